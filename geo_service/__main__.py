from geo_service.cli import main

raise SystemExit(main())
