"""Training on TRL + DeepSpeed: config sections, data, batch plan, builders, memory planner, model card.

Imported by the entry points `limo.train` and `limo.plan`; heavy libraries (torch, transformers, trl,
deepspeed) are imported inside the functions that need them so that composing a recipe stays fast.
"""
