"""The pipeline's stages, one module each: `run(..., Options) -> StageReport`.

build (a recipe into a build folder) -> check (offline audit) -> verify (boots on the fake platform) ->
convert (fixed VHD in place) -> publish (local gallery or Azure); pipeline.py runs them in order with gates.
Nothing here parses a command line: the command layer builds the options objects.
"""
