"""Instructor insight from graded results, without regrading (docs/grading.md, "Class report"):

    python -m autograder.insight report --work WORK        # WORK/report/index.html, <lesson>.html, report.json
    python -m autograder.insight similarity --work WORK    # WORK/report/similarity-<lesson>.html, similarity.json

`load` reads what the grader wrote (autograder.grader.report's layout), `report` sums it per lesson
into the misconception report, `similarity` flags pairs of submissions whose own code is alike.
"""
