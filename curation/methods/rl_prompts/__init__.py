"""``curate.method: rl_prompts``: prompts for RL with verifiable rewards (`curation.methods.rl_prompts.method`)."""
