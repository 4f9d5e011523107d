from autograder.fairness import main

main()
