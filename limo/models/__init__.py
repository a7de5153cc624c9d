"""Model helpers every command shares: which chat template and end-of-turn token a run's model uses (`chat`), and
the tiny offline models that tests and the CPU recipes build (`tiny`). Nothing here imports training.
"""
