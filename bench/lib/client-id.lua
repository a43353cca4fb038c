-- wrk script: a fresh random eas-client-id (UUID v4 text) on every request,
-- so a percentage rollout has to place a new device each time. The other
-- headers come from wrk's -H flags (they are in wrk.headers).
local random = math.random

function init(args)
  -- One Lua state per wrk thread: seed each differently.
  local address = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + address % 1000003)
end

local function uuid()
  return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    local v = (c == "x") and random(0, 15) or random(8, 11)
    return string.format("%x", v)
  end))
end

function request()
  wrk.headers["eas-client-id"] = uuid()
  return wrk.format()
end
