"""The Textual dashboard over the lab's Session API. Holds no broker logic."""
