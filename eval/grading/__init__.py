"""The answer grader: its front (`grader`: grade, verify, grade_many; `pool`: the persistent grading pool;
`policy`: symbolic, judge or both; `judge` and `judge_presets`: the model judge; `majority`: a gold by majority
vote; `kinds`: per answer kind) and its internals (normalisation, the whitelisting parser, comparison, time limits).

Users import the public names from `eval.grader` and `eval.extract`. These modules never call `eval`, `exec`,
`sympify` or `parse_expr`: every sympy object is built directly from a whitelisted token.
"""
