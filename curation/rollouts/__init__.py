"""Fresh rollouts for pass rates (`run`), adaptive sampling (`adaptive`) and the spend plan (`spend`)."""
