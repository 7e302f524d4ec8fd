public enum SameDayBrokerPlaceholder {}
