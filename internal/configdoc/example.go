package configdoc

// exampleSources is a sources file that sets every field at least once. The
// reference takes each field's example from it, and TestExampleSourcesIsValid
// checks that internal/sources accepts it.
const exampleSources = `sources:
  - name: stripe
    type: stripe
    livemode: true
    object: {json: data.object.id}
    time: {json: created}
    tolerance: 5m
    secrets:
      - {label: current, env: STRIPE_WEBHOOK_SECRET}
      - {label: previous, file: /run/secrets/stripe_previous}
  - name: github
    type: github
    replay_guard: body
    event_types: [push, pull_request]
    failure_status: 401
    max_body_bytes: 26214400
    id: {header: X-GitHub-Delivery}
    event_type: {header: X-GitHub-Event}
    allow_ips: ["192.30.252.0/22", "2606:50c0::/32"]
    secrets: [{label: current, env: GITHUB_WEBHOOK_SECRET}]
  - name: acme
    type: hmac
    tolerance: 10m
    id: {json: delivery.id}
    event_type: {json: event.type}
    object: {header: X-Acme-Account}
    time: {header: X-Acme-Timestamp}
    hmac:
      header: X-Acme-Signature
      prefix: "sha256="
      algorithm: sha256
      encoding: base64
      timestamp_header: X-Acme-Timestamp
      template: "{timestamp}.{body}"
    secrets: [{label: current, env: ACME_WEBHOOK_SECRET}]
`
