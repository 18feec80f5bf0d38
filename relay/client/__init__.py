"""What runs on a person's own machine: the client SDK, outbox, profiles, the CLI and the local web interfaces."""
