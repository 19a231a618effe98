from recogan.cli import main

raise SystemExit(main())
