"""The helpdesk: a unified inbox for small support teams."""
