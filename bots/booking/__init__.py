"""The virtual citizen office: booking video appointments, the waiting room,
walk-ins, pulling the next citizen into the call (``!next``), guests, reminders,
no-shows, the staff's day and calendar feed (issue "Virtuelles Bürgerbüro")."""
