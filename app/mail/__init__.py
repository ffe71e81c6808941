"""Mail: composing, identifying and sending what we send."""
