from formula_search.cli import main

main()
