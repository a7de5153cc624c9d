"""Internals of the answer grader: normalisation, the whitelisting parser, comparison and time limits.

The public surface is `eval.grader` and `eval.extract`; import from there. These modules never call
`eval`, `exec`, `sympify` or `parse_expr`: every sympy object is built directly from a whitelisted token.
"""
