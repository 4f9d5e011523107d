"""nbgrader configuration for building the student release.

nbgrader is used for what it does well: turning the instructor source (solutions/, converted to
.ipynb under build/nbgrader/source) into the student release (stubs instead of solutions, locked
and checksummed test cells). Grading is done by autograder.grade instead (see README: sandbox,
references computed outside the student's kernel).
"""
import os

c = get_config()  # noqa: F821  (injected by nbgrader)
c.CourseDirectory.course_id = "convlab"
c.CourseDirectory.root = os.environ.get("CONVLAB_NBGRADER_ROOT", "build/nbgrader")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True
