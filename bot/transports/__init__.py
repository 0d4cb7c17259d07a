"""Doors to the engine: the terminal chat, aiogram and python-telegram-bot."""
