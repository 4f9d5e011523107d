from autograder.samples import main

main()
