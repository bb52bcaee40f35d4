from dclab.cli import main

raise SystemExit(main())
