"""The ConvLab grader: runs each submission in a sandbox, checks it against references computed outside."""
