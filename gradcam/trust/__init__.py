"""Should a map be believed? Faithfulness scores next to random maps, and the sanity check."""
