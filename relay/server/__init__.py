"""What runs on the relay host. Holds no private key and imports nothing that decrypts."""
