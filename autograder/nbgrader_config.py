"""nbgrader configuration of the course: the release build, the gradebook and formgrader.

nbgrader does what it does well: turning the instructor source (solutions/, as .ipynb) into the
student release (stubs instead of solutions, locked and checksummed test cells), and holding the
grades in its gradebook, where formgrader shows them, the instructor grades written answers and
`nbgrader export` exports them. Grading itself is done by autograder.grade (see docs/grading.md:
sandbox, references computed outside the student's kernel), which writes into this gradebook.

The course root is the grading work folder (nbgrader's layout: submitted/, autograded/, feedback/,
source/ and gradebook.db); CONVLAB_NBGRADER_ROOT overrides it (`make lab-instructor WORK=...` sets it).
"""
import os

c = get_config()  # noqa: F821  (injected by nbgrader)
c.CourseDirectory.course_id = "convlab"
c.CourseDirectory.root = os.environ.get("CONVLAB_NBGRADER_ROOT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "work")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True

# Late submissions: a submission's timestamp.txt against the assignment's due date in the
# gradebook. The penalty is nbgrader's late-submission plugin: "none" (the default) records the
# lateness only, "zero" gives a late notebook 0; a plugin class of your own can compute any other.
c.LateSubmissionPlugin.penalty_method = "none"
# c.AssignLatePenalties.plugin_class = "mycourse.late.HalfPointPerHour"
