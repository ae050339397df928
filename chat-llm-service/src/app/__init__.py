"""chat-llm-service: the shop assistant: LLM chat, embeddings and token counting for the fleet."""
