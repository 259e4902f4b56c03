"""The text side: tokenizer with the released token ids, chat templates, prompt layout."""
