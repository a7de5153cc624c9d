"""Generate and grade: the resumable loop for one benchmark (`runner`), chat messages from a problem
(`prompting`), multi-turn episodes (`multiturn`), a model's likelihood of given answers (`likelihood`), re-grading
saved responses (`regrade`) and comparing two runs (`compare_runs`).
"""
