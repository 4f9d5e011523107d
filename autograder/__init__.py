"""ConvLab's grader, release build and instructor tools (the student package is `convlab`)."""
import sys

# nbformat imports jsonschema, which, when rfc3987_syntax is installed (jupyter-events requires it),
# compiles 39 lark grammars at import to check the "iri" string formats: about 1 s in every grader,
# build and Dask worker process. Nothing here checks string formats (nbformat validates without a
# format checker), so these processes mark the module absent and jsonschema leaves those formats out.
sys.modules.setdefault("rfc3987_syntax", None)
