"""Natural language to query-plan agent with Ollama and OpenRouter providers."""

__version__ = "0.1.0"
