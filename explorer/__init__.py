"""The learners' explorer: one Voilà page per topic (jupytext percent sources NN_topic.py here),
every widget of the lessons on its own reference-free logic, no code shown. `make explore`."""
