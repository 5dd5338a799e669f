from livecore.cli import main

main()
