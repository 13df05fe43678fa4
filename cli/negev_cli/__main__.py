from negev_cli.app import main

main()
