"""Lets nbgrader (formgrader in `make lab-instructor`, `nbgrader export`) started at the repository
root find the course config, which lives in autograder/nbgrader_config.py."""
load_subconfig("autograder/nbgrader_config.py")  # noqa: F821  (injected by nbgrader)
