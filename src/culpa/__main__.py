from culpa.cli import main

main()
