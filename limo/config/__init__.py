"""Recipes read, at the ground of limo: where recipes are found (`search_path`), a recipe section as typed options
(`sections`), which recipe file sets a key and the check that the files options name exist (`files`), and the run
folder of each job of a Hydra sweep (`sweeps`). Nothing here imports another part of limo.
"""
