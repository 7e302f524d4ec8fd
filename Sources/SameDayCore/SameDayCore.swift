/// SameDay's domain: events, calendars, deadlines, the dossier state machine, alert rules and rollups.
public enum SameDayCore {}
