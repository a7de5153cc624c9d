"""Reading an answer out of text: the final answer of a response (`extract`), escapes that string escaping ate
(`escapes`), the one table of English number words (`number_words`).

Nothing here imports `eval.grading` (tests/test_import_graph.py): grading reads answers with these modules.
"""
