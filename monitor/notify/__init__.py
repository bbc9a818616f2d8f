"""Notifications: events -> messages -> an outbox delivered through Apprise, never lost.

message and policy are pure; redact hides secrets of Apprise URLs; send is the only
module that imports apprise; outbox plans and delivers against the store's Outbox
protocol; memory holds an in-memory Outbox (the reference for a store's behaviour).
"""
