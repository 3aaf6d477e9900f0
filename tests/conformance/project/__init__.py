"""The smallest Django project that serves an echo WebSocket, for Autobahn TestSuite."""
