-- wrk script: POST /requests with a unique kafka-topic request each time; the token
-- comes from the TOKEN environment variable. Prints p50/p95/p99 and the rate.
local token = os.getenv("TOKEN") or error("set TOKEN to a dev token (orchestrator dev-token)")
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"item":"kafka-topic","fields":{"topicName":"wrk.t-%d-%d","producerPrincipal":"arn:aws:iam::123456789012:role/b"}}', counter, math.random(1, 1000000000))
  return wrk.format("POST", "/requests", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. token}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, %.0f req/s, errors %d\n",
    latency:percentile(50)/1000, latency:percentile(95)/1000, latency:percentile(99)/1000,
    summary.requests / (summary.duration / 1e6), summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
