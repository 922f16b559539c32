"""Webhooks: device events, command results and profile states POSTed as JSON to the
URLs in `webhook_urls`, from a durable queue with retries, each body signed with HMAC.

The body is MicroMDM's webhook event (also NanoMDM's "microwebhook"), so receivers written
for them work unchanged: `topic`, `event_id`, `created_at`, and `checkin_event` (device
events) or `acknowledge_event` (command results), with the device's own plist base64 in
`raw_payload`. Profile states, which MicroMDM does not send, use the topic
`orchardist.ProfileStatus` and a `profile_event`.
"""
