from relay.client.cli import main

raise SystemExit(main())
