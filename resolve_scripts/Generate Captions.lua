--[[
Generate Captions - CaptionBridge for DaVinci Resolve (Workspace > Scripts > Utility > Generate Captions).

The Lua entry: the free edition of Resolve runs only Lua menu scripts since 21.1 (Python scripting became
Studio-only), and Studio runs it too. Same flow as "Generate Captions.py":
  product/version check (Studio-only calls are never made on free) -> export the timeline (OTIO from 18.5, FCP7 XML
  before) -> read start frame, rate, drop-frame -> options -> submit to the local engine -> progress -> one named
  subtitle track per language, each cue at recordFrame = timeline start frame + cue frame -> read back
  GetItemListInTrack("subtitle", n) and compare -> fallbacks (FCPXML timeline import, then the sidecar SRT with
  exact instructions) -> review markers -> restore page, timeline, playhead, marks and track states.
Then it records the job on the timeline (<config>/editor-jobs.json, shared with the Python script) for the menu
entries "Review Captions" (M.review: the engine's review page on that job, through a one-time link; also the
"Captions added" dialog's button) and "Update Captions" (M.update: the latest approved version on a new track,
read back, and only then the job's old track removed; a job placed one track per speaker gets new speaker tracks
as reviewed, the same way), written by the installer from menu_entry.lua.template.

HTTP: Lua in Resolve has no sockets, so requests go through `curl` via io.popen. curl ships with macOS, with
Windows 10 1803+ (C:\Windows\System32\curl.exe) and with every desktop Linux, so one code path works on all three
operating systems, without depending on the captionbridge CLI being on Resolve's PATH (Resolve is started from the
Dock/Start menu, not from a shell with a virtualenv). The bearer token goes to curl in a header file (-H @file),
never on the command line where other users' `ps` could read it; each request gets its own folder with an
unpredictable name, created owner-only (0700, its files 0600) and refused if it already exists, and removed after
the request, also when it fails. Every request is bounded (a 3 s health check first, then --connect-timeout and
--max-time on each call), so a stuck engine never freezes Resolve.

Written for Lua 5.1/LuaJIT (Fusion's Lua) and runs on 5.4 (the tests): no goto, no //, no bit operators.
When the global CAPTIONBRIDGE_NO_MAIN is true the chunk returns its functions instead of running (tests).
]]

local M = {}
M.VERSION = "0.1.0"
M.LOW_CONFIDENCE = 0.5
M.MAX_MARKERS = 300
M.STUDIO_ONLY = { CreateSubtitlesFromAudio = true, DetectSceneCuts = true, AnalyzeDolbyVision = true,
                  CreateMagicMask = true }
M.LANGUAGE_NAMES = { en = "English", zh = "Chinese", ja = "Japanese", ko = "Korean", fr = "French",
                     de = "German", es = "Spanish", und = "Captions" }
M.TERMINAL = { succeeded = true, failed = true, cancelled = true }

local IS_WINDOWS = package.config:sub(1, 1) == "\\"
local SEP = IS_WINDOWS and "\\" or "/"

-- ------------------------------------------------------------------------------------------------------------
-- JSON (enough for the engine's contract)
-- ------------------------------------------------------------------------------------------------------------
local json = {}
M.json = json
json.null = setmetatable({}, { __tostring = function() return "null" end })

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return true, n
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

-- A UTF-8 sequence as JSON's \u escapes (a surrogate pair above U+FFFF); a malformed one is left as it is.
local function utf8_escape(seq)
  local c = seq:byte(1)
  local n, cp = 2, c - 192
  if c >= 240 then n, cp = 4, c - 240 elseif c >= 224 then n, cp = 3, c - 224 end
  if #seq ~= n then return seq end
  for i = 2, n do cp = cp * 64 + (seq:byte(i) - 128) end
  if cp >= 65536 then
    cp = cp - 65536
    return string.format("\\u%04x\\u%04x", 55296 + math.floor(cp / 1024), 56320 + cp % 1024)
  end
  return string.format("\\u%04x", cp)
end

-- `ascii`: every character past ASCII as \u escapes, as Python's json writes by default (files both scripts
-- share stay plain ASCII, whatever encoding the other side reads them with).
function json.encode(v, ascii)
  local t = type(v)
  if v == nil or v == json.null then return "null" end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "string" then
    local out = v:gsub('[%c"\\]', function(c)
      return escapes[c] or string.format("\\u%04x", c:byte())
    end)
    if ascii then out = out:gsub("[\192-\247][\128-\191]*", utf8_escape) end
    return '"' .. out .. '"'
  end
  if t == "table" then
    local arr, n = is_array(v)
    local parts = {}
    if arr and (n > 0 or next(v) == nil and getmetatable(v) == json.array_mt) then
      for i = 1, n do parts[#parts + 1] = json.encode(v[i], ascii) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    if arr and n == 0 then return "{}" end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = json.encode(k, ascii) .. ":" .. json.encode(v[k], ascii) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode " .. t .. " as JSON")
end
json.array_mt = {}
function json.array(t) return setmetatable(t or {}, json.array_mt) end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                     0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

function json.decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t\r\n]", pos) or (#s + 1) end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = s:sub(pos, pos)
      if c == "" then error("unterminated string in JSON") end
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if e == "u" then
          local cp = tonumber(s:sub(pos + 2, pos + 5), 16)
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and s:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(s:sub(pos + 2, pos + 5), 16)
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8_char(cp)
        else
          out[#out + 1] = map[e] or e
          pos = pos + 2
        end
      else
        local j = s:find('["\\]', pos) or (#s + 1)
        out[#out + 1] = s:sub(pos, j - 1)
        pos = j
      end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        local k = str(); ws()
        if s:sub(pos, pos) ~= ":" then error("expected ':' in JSON at " .. pos) end
        pos = pos + 1
        t[k] = value(); ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then error("expected ',' in JSON at " .. pos) end
      end
    elseif c == "[" then
      local t = json.array({})
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value(); ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then error("expected ',' in JSON array at " .. pos) end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return json.null
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then error("unexpected character in JSON at " .. pos) end
      pos = pos + #num
      return tonumber(num)
    end
  end
  local ok, result = pcall(value)
  if not ok then return nil, result end
  return result
end

local function nn(v) if v == json.null then return nil end return v end

-- ------------------------------------------------------------------------------------------------------------
-- Files and processes
-- ------------------------------------------------------------------------------------------------------------
local function quote(arg)
  if IS_WINDOWS then return '"' .. tostring(arg):gsub('"', '\\"') .. '"' end
  return "'" .. tostring(arg):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close(); return true end
  return false
end

local function join(...) return table.concat({ ... }, SEP) end
M.join = join

local sleep  -- defined with the engine code below; Engine.discover waits with it

-- os.execute's result as a boolean: Lua 5.1/LuaJIT return the exit code, 5.2+ return true/nil.
local function succeeded(a)
  if type(a) == "number" then return a == 0 end
  return a == true
end
M.succeeded = succeeded

local function mkdir(path)
  if IS_WINDOWS then
    os.execute('mkdir "' .. path .. '" >NUL 2>NUL')
  else
    os.execute("mkdir -p " .. quote(path))
  end
end

-- An unpredictable name: 16 bytes of the system's random source, else a mix of clocks and addresses.
local seeded = false
function M.random_name()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local bytes = f:read(16)
    f:close()
    if bytes and #bytes == 16 then
      return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    end
  end
  if not seeded then
    local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
    math.randomseed((os.time() + math.floor(os.clock() * 1e6) + addr) % 2147483647)
    seeded = true
  end
  local parts = {}
  for i = 1, 8 do parts[i] = string.format("%04x", math.random(0, 65535)) end
  return table.concat(parts)
end

-- Create `path` owner-only (0700) with the given empty files in it (0600). Fails, and touches nothing, when
-- `path` already exists: a folder someone else made first is never used.
function M.make_private_dir(path, files)
  local ok
  if IS_WINDOWS then  -- %TEMP% is the user's own profile folder; mkdir fails on an existing folder
    ok = succeeded(os.execute('mkdir "' .. path .. '" >NUL 2>NUL'))
  else
    local cmd = "umask 077 && mkdir " .. quote(path)
    for _, name in ipairs(files or {}) do cmd = cmd .. " && : > " .. quote(join(path, name)) end
    ok = succeeded(os.execute(cmd .. " 2>/dev/null"))
  end
  if not ok then return nil, "cannot create the private folder " .. path .. " (it may already exist)" end
  return path
end

function M.remove_tree(path)
  if not path or path == "" then return end
  if IS_WINDOWS then
    os.execute('rmdir /s /q "' .. path .. '" >NUL 2>NUL')
  else
    os.execute("rm -rf " .. quote(path))
  end
end

function M.safe_name(text)
  local s = tostring(text or "timeline"):gsub("[^%w%._ %-]", "_"):gsub("^[ %.]+", ""):gsub("[ %.]+$", "")
  if s == "" then s = "timeline" end
  return s:sub(1, 80)
end

function M.config_dir()
  local env = os.getenv("CAPTIONBRIDGE_CONFIG_DIR")
  if env and env ~= "" then return env end
  if IS_WINDOWS then return join(os.getenv("APPDATA") or "", "CaptionBridge") end
  local home = os.getenv("HOME") or ""
  if exists("/System/Library/CoreServices/SystemVersion.plist") then
    return join(home, "Library", "Application Support", "CaptionBridge")
  end
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return join(xdg, "captionbridge") end
  return join(home, ".config", "captionbridge")
end

local function temp_base()
  return os.getenv("TMPDIR") or os.getenv("TEMP") or os.getenv("TMP") or (IS_WINDOWS and "C:\\Temp" or "/tmp")
end

-- A new private working folder (exported timeline); the caller removes it.
function M.temp_dir()
  local err
  for _ = 1, 5 do
    local dir = join(temp_base(), "captionbridge-" .. M.random_name())
    local made
    made, err = M.make_private_dir(dir)
    if made then return made end
  end
  return nil, err
end

-- ------------------------------------------------------------------------------------------------------------
-- Engine over HTTP (curl)
-- ------------------------------------------------------------------------------------------------------------
local Engine = {}
Engine.__index = Engine
M.Engine = Engine

M.HEALTH_TIMEOUT = 3    -- seconds: is the engine there at all
M.REQUEST_TIMEOUT = 15  -- seconds: any API call (submit checks the timeline; status polls are instant); the
                        -- progress window names what the script is waiting for
M.DOWNLOAD_TIMEOUT = 120
M.START_WAIT = 30       -- seconds to wait for an engine this script started

function Engine.new(base_url, token, pid)
  return setmetatable({ base_url = base_url, token = token, pid = pid,
                        curl = os.getenv("CAPTIONBRIDGE_CURL") or "curl" }, Engine)
end

-- Start `captionbridge serve` in the background (path recorded by `captionbridge install resolve`).
function M.start_engine(config)
  local install = json.decode(read_file(join(config, "install.json")) or "")
  local cli = os.getenv("CAPTIONBRIDGE_CLI") or (type(install) == "table" and nn(install.cli)) or nil
  if not cli or not exists(cli) then return false end
  if IS_WINDOWS then
    os.execute('start "CaptionBridge engine" /B ' .. quote(cli) .. " serve >NUL 2>NUL")
  else
    os.execute("nohup " .. quote(cli) .. " serve >/dev/null 2>&1 &")
  end
  return true
end

local function pid_alive(pid)
  pid = tonumber(pid)
  if not pid or pid <= 0 then return false end
  if IS_WINDOWS then return true end  -- no cheap check: the port check decides
  return succeeded(os.execute("kill -0 " .. string.format("%d", pid) .. " 2>/dev/null"))
end
M.pid_alive = pid_alive

local function from_config(config)
  local info = json.decode(read_file(join(config, "service.json")) or "")
  local token = (read_file(join(config, "token")) or ""):gsub("%s+", "")
  if type(info) ~= "table" or token == "" then return nil end
  local host = nn(info.host) or "127.0.0.1"
  if host == "0.0.0.0" or host == "::" then host = "127.0.0.1" end
  if host:find(":") then host = "[" .. host .. "]" end
  local eng = Engine.new("http://" .. host .. ":" .. tostring(nn(info.port) or 8765), token, nn(info.pid))
  eng.config = config  -- the config folder it was found through (where editor-jobs.json lives)
  return eng
end

-- What to do when the engine is not there; `script` is the menu entry to run again once it is.
local function how_to_start(script)
  return "Open a terminal, run `captionbridge serve` and leave it open, then run Workspace > Scripts > " ..
    (script or "Generate Captions") .. " again. (Looked for "
end

-- "ok", "refused" (token), "hung" (answers no request in time) or "down" (nothing listens, or a dead process).
function Engine:check()
  local status, err, timed_out = self:request("GET", "/v1/health", nil, nil, M.HEALTH_TIMEOUT)
  if status == 401 or status == 403 then return "refused" end
  if status then return "ok" end  -- it answers: a 503 (no new jobs) is reported with the engine's own words later
  if timed_out and pid_alive(self.pid) then return "hung", err end
  return "down", err
end

-- The running engine (service.json + token, checked with a 3 s health request). A service.json whose process is
-- dead or whose port does not answer is stale: the engine is started from install.json, as the README promises,
-- with progress shown while it starts. Returns the engine, or nil and a message for the user.
function Engine.discover(config, start, ui, script)
  config = config or M.config_dir()
  local looked = join(config, "service.json") .. ".)"
  local eng = from_config(config)
  local state, detail = "down", nil
  if eng then state, detail = eng:check() end
  if state == "ok" then return eng end
  if state == "refused" then
    return nil, "The CaptionBridge engine at " .. eng.base_url .. " refused this computer's access token. Restart " ..
      "`captionbridge serve` so that it and Resolve use the same token file."
  end
  if state == "hung" then
    return nil, "The CaptionBridge engine at " .. eng.base_url .. " (process " .. tostring(eng.pid) .. ") accepts " ..
      "connections but does not answer within " .. M.HEALTH_TIMEOUT .. " s (" .. tostring(detail) .. "): it is " ..
      "stuck or overloaded. Stop it (Ctrl-C in its terminal, or end the process), start `captionbridge serve` " ..
      "again, then run " .. (script or "Generate Captions") .. " again."
  end
  if not (start and M.start_engine(config)) then
    if eng then
      return nil, "Cannot reach the CaptionBridge engine at " .. eng.base_url .. " (" .. tostring(detail) ..
        "): it is not running any more. " .. how_to_start(script) .. looked
    end
    return nil, "The CaptionBridge engine is not running. " .. how_to_start(script) .. looked
  end
  local started = os.time()
  local waited = 0
  while waited < M.START_WAIT do
    if ui then ui:progress("starting the CaptionBridge engine", 0, M.START_WAIT - waited) end
    sleep(0.5)
    eng = from_config(config)
    if eng and eng:check() == "ok" then return eng end
    waited = math.max(waited + 0.5, os.time() - started)
  end
  return nil, "Started `captionbridge serve`, but it did not answer within " .. M.START_WAIT .. " s. " ..
    how_to_start(script) .. looked
end

-- One request through curl. Returns status, body (string); or nil, a message, and whether it timed out.
-- The token travels in a header file in a private folder made for this request alone, removed afterwards.
function Engine:request(method, path, body, out_file, timeout)
  local dir
  for _ = 1, 5 do
    dir = M.make_private_dir(join(temp_base(), "captionbridge-" .. M.random_name()), { "h.txt", "body.json",
                                                                                      "response.bin" })
    if dir then break end
  end
  if not dir then
    return nil, "Cannot create a private temporary folder in " .. temp_base() .. " for the engine request"
  end
  local ok, status, data, timed_out = pcall(function()
    local header_file = join(dir, "h.txt")
    assert(write_file(header_file, "Authorization: Bearer " .. self.token .. "\n"))
    local limit = timeout or M.REQUEST_TIMEOUT
    local cmd = { quote(self.curl), "-sS", "--noproxy", quote("*"), "--connect-timeout",
                  tostring(math.min(3, limit)), "-m", tostring(limit), "-X", method,
                  "-H", quote("@" .. header_file), "-H", quote("Accept: application/json") }
    if body ~= nil then
      local body_file = join(dir, "body.json")
      assert(write_file(body_file, json.encode(body)))
      cmd[#cmd + 1] = "-H"; cmd[#cmd + 1] = quote("Content-Type: application/json")
      cmd[#cmd + 1] = "--data-binary"; cmd[#cmd + 1] = quote("@" .. body_file)
    end
    local response_file = out_file or join(dir, "response.bin")
    cmd[#cmd + 1] = "-o"; cmd[#cmd + 1] = quote(response_file)
    cmd[#cmd + 1] = "-w"; cmd[#cmd + 1] = quote("%{http_code}")
    cmd[#cmd + 1] = quote(self.base_url .. path)
    local line = table.concat(cmd, " ") .. " 2>&1"
    if IS_WINDOWS then line = '"' .. line .. '"' end
    local pipe = io.popen(line, "r")
    local output = pipe and pipe:read("*a") or ""
    if pipe then pipe:close() end
    local code = tonumber(output:match("(%d%d%d)%s*$") or "")
    if not code or code == 0 then
      local said = output:gsub("%d%d%d%s*$", ""):gsub("%s+$", "")
      local slow = said:find("timed out", 1, true) ~= nil or said:find("(28)", 1, true) ~= nil
      return nil, "Cannot reach the CaptionBridge engine at " .. self.base_url .. " (" ..
        (said ~= "" and said or "curl failed") .. "). Is `captionbridge serve` running?", slow
    end
    return code, read_file(response_file) or ""
  end)
  M.remove_tree(dir)
  if not ok then return nil, "CaptionBridge could not talk to the engine: " .. tostring(status) end
  return status, data, timed_out
end

-- The decoded answer; or nil, a message for the user, the HTTP status and the engine's error code (a refusal).
function Engine:json(method, path, body)
  local status, data = self:request(method, path, body)
  if not status then return nil, data end
  local decoded = json.decode(data ~= "" and data or "{}")
  if status >= 400 then
    local err = type(decoded) == "table" and type(decoded.error) == "table" and decoded.error or {}
    local message = nn(err.message) or data
    if status == 401 or status == 403 then
      return nil, "The CaptionBridge engine at " .. self.base_url .. " refused this computer's access token (" ..
        status .. "). Restart `captionbridge serve` so that it and Resolve use the same token file.", status
    end
    return nil, "The engine refused " .. method .. " " .. path .. " (" .. status .. "): " .. tostring(message), status,
      nn(err.code)
  end
  if decoded == nil then return nil, "The engine answered something that is not JSON on " .. path end
  return decoded
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function Engine:submit(timeline_path, options)
  local job, err = self:json("POST", "/v1/jobs", { timeline_path = timeline_path, options = options })
  if not job then return nil, err end
  return job.id
end

function Engine:status(id) return self:json("GET", "/v1/jobs/" .. id) end
function Engine:result(id) return self:json("GET", "/v1/jobs/" .. id .. "/result") end
function Engine:cancel(id) return self:json("DELETE", "/v1/jobs/" .. id) end

function Engine:download(id, name, target)
  local status, err = self:request("GET", "/v1/jobs/" .. id .. "/files/" .. urlencode(name), nil, target,
                                   M.DOWNLOAD_TIMEOUT)
  if not status then return nil, err end
  if status >= 400 then return nil, "The engine did not give " .. name .. " (" .. status .. ")" end
  return true
end

sleep = function(seconds)
  if seconds <= 0 then return end
  if bmd and bmd.wait then bmd.wait(seconds); return end
  if IS_WINDOWS then
    os.execute("ping -n " .. math.max(2, math.floor(seconds + 1)) .. " 127.0.0.1 >NUL")
  else
    os.execute("sleep " .. tostring(seconds))
  end
end
M.sleep = sleep

function Engine:wait(id, ui, poll)
  local cancel_sent = false
  while true do
    local status, err = self:status(id)
    if not status then return nil, err end
    ui:progress(nn(status.stage) or nn(status.state) or "", tonumber(nn(status.progress)) or 0, nn(status.eta_seconds))
    if M.TERMINAL[status.state] then return status end
    if not cancel_sent and ui:cancelled() then
      self:cancel(id)
      cancel_sent = true
    else
      sleep(poll or 0.5)
    end
  end
end

-- ------------------------------------------------------------------------------------------------------------
-- Time (exact integer arithmetic; floats only where exact)
-- ------------------------------------------------------------------------------------------------------------
local function idiv(a, b)  -- floor(a / b) for integers, exact
  local q = math.floor(a / b)
  while q * b > a do q = q - 1 end
  while (q + 1) * b <= a do q = q + 1 end
  return q
end
M.idiv = idiv

function M.parse_rate(text)
  local s = tostring(text or ""):upper():gsub("NDF", ""):gsub("DF", ""):gsub("[^%d%./]", "")
  if s == "" then return nil, "Resolve reports no frame rate for this timeline" end
  local value
  local a, b = s:match("^(%d+)/(%d+)$")
  if a then value = tonumber(a) / tonumber(b) else value = tonumber(s) end
  if not value then return nil, "Unsupported timeline frame rate " .. tostring(text) end
  local nominal = math.floor(value + 0.5)
  if math.abs(value - nominal * 1000 / 1001) < 0.01 and math.abs(value - nominal) > 0.001 then
    return nominal * 1000, 1001
  end
  if math.abs(value - nominal) < 0.001 then return nominal, 1 end
  return nil, "Unsupported timeline frame rate " .. tostring(text)
end

function M.rate_string(num, den)
  if den == 1 then return string.format("%d", num) end
  return string.format("%d/%d", num, den)
end

function M.timecode_to_frames(tc, nominal, drop)
  local h, m, s, f = tc:match("^(%d+)[:;.](%d+)[:;.](%d+)[:;.](%d+)$")
  if not h then return nil end
  h, m, s, f = tonumber(h), tonumber(m), tonumber(s), tonumber(f)
  local frames = ((h * 60 + m) * 60 + s) * nominal + f
  if drop then
    local minutes = h * 60 + m
    frames = frames - idiv(nominal, 15) * (minutes - idiv(minutes, 10))
  end
  return frames
end

function M.frames_to_timecode(frames, nominal, drop)
  if drop then
    local dropped = idiv(nominal, 15)
    local per10 = nominal * 600 - dropped * 9
    local per_min = nominal * 60 - dropped
    local tens = idiv(frames, per10)
    local rem = frames - tens * per10
    if rem > dropped then
      frames = frames + dropped * 9 * tens + dropped * idiv(rem - dropped, per_min)
    else
      frames = frames + dropped * 9 * tens
    end
  end
  local f = frames % nominal
  local total_s = idiv(frames, nominal)
  return string.format("%02d:%02d:%02d%s%02d", idiv(total_s, 3600), idiv(total_s, 60) % 60, total_s % 60,
                       drop and ";" or ":", f)
end

function M.frame_ms_ceil(frame, num, den)
  return -idiv(-frame * 1000 * den, num)
end

local function srt_time(ms)
  local h = idiv(ms, 3600000); ms = ms - h * 3600000
  local m = idiv(ms, 60000); ms = ms - m * 60000
  local s = idiv(ms, 1000); ms = ms - s * 1000
  return string.format("%02d:%02d:%02d,%03d", h, m, s, ms)
end

local function cue_text(cue, language)
  local t = type(cue.text) == "table" and nn(cue.text[language]) or nil
  if type(t) ~= "string" then return nil end
  t = t:gsub("^%s+", ""):gsub("%s+$", "")
  if t == "" then return nil end
  return t
end

function M.write_srt(cues, language, num, den, path)
  local parts, n = {}, 0
  for _, cue in ipairs(cues) do
    local text = cue_text(cue, language)
    if text then
      n = n + 1
      parts[#parts + 1] = string.format("%d\n%s --> %s\n%s\n", n,
        srt_time(M.frame_ms_ceil(cue.start_frame, num, den)), srt_time(M.frame_ms_ceil(cue.end_frame, num, den)), text)
    end
  end
  local ok, err = write_file(path, table.concat(parts, "\n"))
  if not ok then return nil, err end
  return n
end

-- ------------------------------------------------------------------------------------------------------------
-- Resolve
-- ------------------------------------------------------------------------------------------------------------
local function count(t)
  local n = 0
  if type(t) == "table" then for _ in pairs(t) do n = n + 1 end end
  return n
end

local function list(t)
  local out = {}
  if type(t) == "table" then
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return (tonumber(a) or 0) < (tonumber(b) or 0) end)
    for _, k in ipairs(keys) do out[#out + 1] = t[k] end
  end
  return out
end
M.list = list

function M.product_info(resolve)
  local name = tostring(resolve:GetProductName() or "DaVinci Resolve")
  local v = list(resolve:GetVersion() or {})
  local version = { tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0 }
  return { name = name, studio = name:lower():find("studio") ~= nil, version = version }
end

local function version_at_least(v, major, minor)
  return v[1] > major or (v[1] == major and v[2] >= minor)
end
M.version_at_least = version_at_least

function M.studio_call(ctx, obj, name, ...)
  if M.STUDIO_ONLY[name] and not ctx.product.studio then return nil end
  return obj[name](obj, ...)
end

function M.timeline_clock(timeline)
  local rate_text = tostring(timeline:GetSetting("timelineFrameRate") or "")
  local df_setting = tostring(timeline:GetSetting("timelineDropFrameTimecode") or "")
  local start_tc = tostring(timeline:GetStartTimecode() or "00:00:00:00")
  local num, den = M.parse_rate(rate_text)
  if not num then return nil, den end
  local nominal = math.floor(num / den + 0.5)
  local drop = rate_text:upper():gsub("NDF", ""):find("DF") ~= nil or df_setting == "1" or
    df_setting:lower() == "true" or start_tc:find(";") ~= nil
  if nominal ~= 30 and nominal ~= 60 then drop = false end
  local start_frame = tonumber(timeline:GetStartFrame()) or M.timecode_to_frames(start_tc, nominal, drop)
  return { num = num, den = den, rate = M.rate_string(num, den), nominal = nominal, drop_frame = drop,
           start_frame = start_frame, start_timecode = start_tc }
end

function M.export_timeline(resolve, timeline, folder, product)
  local name = M.safe_name(timeline:GetName() or "timeline")
  local attempts = {}
  if version_at_least(product.version, 18, 5) and resolve.EXPORT_OTIO ~= nil then
    attempts[#attempts + 1] = { "otio", join(folder, name .. ".otio"), resolve.EXPORT_OTIO }
  end
  if resolve.EXPORT_FCP_7_XML ~= nil then
    attempts[#attempts + 1] = { "xml", join(folder, name .. ".xml"), resolve.EXPORT_FCP_7_XML }
  end
  local tried = {}
  for _, a in ipairs(attempts) do
    local ok = timeline:Export(a[2], a[3], resolve.EXPORT_NONE)
    local data = ok and read_file(a[2])
    if data and #data > 0 then return a[2], a[1] end
    tried[#tried + 1] = a[1]:upper()
  end
  return nil, "Resolve could not export the timeline (" .. table.concat(tried, ", ") .. " tried). Check that " ..
    "the timeline is not empty and that " .. folder .. " is writable."
end

local TRACK_TYPES = { "video", "audio", "subtitle" }

function M.save_state(resolve, project, timeline, media_pool)
  local state = { page = resolve:GetCurrentPage(), timeline = timeline, timecode = timeline:GetCurrentTimecode(),
                  marks = timeline:GetMarkInOut(), folder = media_pool and media_pool:GetCurrentFolder(), tracks = {} }
  for _, kind in ipairs(TRACK_TYPES) do
    for i = 1, (tonumber(timeline:GetTrackCount(kind)) or 0) do
      state.tracks[#state.tracks + 1] = { kind, i, timeline:GetIsTrackEnabled(kind, i), timeline:GetIsTrackLocked(kind, i) }
    end
  end
  return state
end

local function same_marks(a, b) return json.encode(a or {}) == json.encode(b or {}) end

function M.restore_state(resolve, project, media_pool, state)
  local timeline = state.timeline
  if project:GetCurrentTimeline() ~= timeline then project:SetCurrentTimeline(timeline) end
  for _, t in ipairs(state.tracks) do
    if t[3] ~= nil and timeline:GetIsTrackEnabled(t[1], t[2]) ~= t[3] then timeline:SetTrackEnable(t[1], t[2], t[3]) end
    if t[4] ~= nil and timeline:GetIsTrackLocked(t[1], t[2]) ~= t[4] then timeline:SetTrackLock(t[1], t[2], t[4]) end
  end
  if type(state.marks) == "table" and not same_marks(timeline:GetMarkInOut(), state.marks) then
    timeline:ClearMarkInOut("all")
    for kind, mark in pairs(state.marks) do
      if type(mark) == "table" and mark["in"] and mark.out then timeline:SetMarkInOut(mark["in"], mark.out, kind) end
    end
  end
  if state.timecode then timeline:SetCurrentTimecode(state.timecode) end
  if media_pool and state.folder then media_pool:SetCurrentFolder(state.folder) end
  if state.page and resolve:GetCurrentPage() ~= state.page then resolve:OpenPage(state.page) end
end

function M.caption_bin(media_pool)
  local root = media_pool:GetRootFolder()
  if not root then return nil end
  for _, folder in ipairs(list(root:GetSubFolderList())) do
    if folder:GetName() == "CaptionBridge" then return folder end
  end
  return media_pool:AddSubFolder(root, "CaptionBridge")
end

function M.verify_track(timeline, index, expected)
  local items = list(timeline:GetItemListInTrack("subtitle", index))
  local starts, problems = {}, {}
  for _, item in ipairs(items) do starts[tonumber(item:GetStart())] = tonumber(item:GetEnd()) end
  if #items ~= #expected then
    problems[#problems + 1] = string.format("%d of %d captions are on the track", #items, #expected)
  end
  local missing, first = 0, nil
  for _, e in ipairs(expected) do
    if starts[e[1]] == nil then missing = missing + 1; first = first or e[1] end
  end
  if missing > 0 then
    problems[#problems + 1] = string.format("%d captions are not on their frame (first expected at record frame %d)",
                                            missing, first)
  end
  return { ok = #problems == 0, count = #items, problems = problems }
end

local function clear_track(timeline, index)
  local items = list(timeline:GetItemListInTrack("subtitle", index))
  if #items > 0 then timeline:DeleteClips(items, false) end
end

function M.place_language(ctx, language, cues, srt_path, track_name)
  local timeline, media_pool, clock = ctx.timeline, ctx.media_pool, ctx.clock
  local start = clock.start_frame
  local mine, expected = {}, {}
  for _, c in ipairs(cues) do
    if cue_text(c, language) then
      mine[#mine + 1] = c
      expected[#expected + 1] = { start + c.start_frame, start + c.end_frame }
    end
  end
  local report = { language = language, expected = #mine, placed = 0, problems = {}, srt = srt_path }
  local name = track_name or (M.LANGUAGE_NAMES[language] or language) .. " (CaptionBridge)"
  local before = tonumber(timeline:GetTrackCount("subtitle")) or 0
  if not timeline:AddTrack("subtitle") or (tonumber(timeline:GetTrackCount("subtitle")) or 0) ~= before + 1 then
    report.problems[#report.problems + 1] = "Resolve did not add a subtitle track"
    return report
  end
  local track = before + 1
  timeline:SetTrackName("subtitle", track, name)
  report.track, report.track_name = track, name
  local imported = list(media_pool:ImportMedia({ srt_path }))
  local item = imported[1]
  if not item then
    report.problems[#report.problems + 1] = "Resolve did not import the SRT into the Media Pool"
  else
    local per_cue = {}
    for _, c in ipairs(mine) do
      per_cue[#per_cue + 1] = { mediaPoolItem = item, startFrame = c.start_frame, endFrame = c.end_frame,
                                recordFrame = start + c.start_frame, trackIndex = track }
    end
    local strategies = { { "per-cue", per_cue },
                         { "whole-file", { { mediaPoolItem = item, recordFrame = start, trackIndex = track } } } }
    for _, s in ipairs(strategies) do
      media_pool:AppendToTimeline(s[2])  -- its answer is not trusted: read back
      local check = M.verify_track(timeline, track, expected)
      report.placed = check.count
      if check.ok then
        report.method, report.strategy = "subtitle_track", s[1]
        return report
      end
      report.problems[#report.problems + 1] = s[1] .. " placement: " .. table.concat(check.problems, "; ")
      clear_track(timeline, track)
    end
  end
  clear_track(timeline, track)
  timeline:DeleteTrack("subtitle", track)
  report.track, report.placed = nil, 0
  return report
end

function M.fallback_fcpxml(ctx, fcpxml_path, languages, cues)
  if not fcpxml_path or not exists(fcpxml_path) then return nil end
  local project, media_pool, timeline = ctx.project, ctx.media_pool, ctx.timeline
  local name = (timeline:GetName() or "Timeline") .. " captions"
  local new = media_pool:ImportTimelineFromFile(fcpxml_path, { timelineName = name, importSourceClips = false })
  if not new then return nil end
  local counts = {}
  for i = 1, (tonumber(new:GetTrackCount("subtitle")) or 0) do
    counts[#counts + 1] = count(new:GetItemListInTrack("subtitle", i))
  end
  local wanted = {}
  for _, lang in ipairs(languages) do
    local n = 0
    for _, c in ipairs(cues) do if cue_text(c, lang) then n = n + 1 end end
    wanted[#wanted + 1] = n
  end
  project:SetCurrentTimeline(timeline)
  -- every language that failed on the user's timeline must be complete on one of the imported tracks
  local complete = true
  for _, n in ipairs(wanted) do
    local found = false
    for i, c in ipairs(counts) do
      if c == n then table.remove(counts, i); found = true; break end
    end
    if not found then complete = false end
  end
  if not complete then
    media_pool:DeleteTimelines({ new })
    return nil
  end
  return { timeline_name = new:GetName() or name }
end

function M.add_review_markers(ctx, words)
  local added, low, seen = 0, 0, {}
  for _, w in ipairs(words or {}) do
    local conf = tonumber(nn(w.confidence)) or 1
    if conf < M.LOW_CONFIDENCE then
      low = low + 1
      local frame = tonumber(w.start_frame)
      if low <= M.MAX_MARKERS and not seen[frame] then
        seen[frame] = true
        local duration = math.max(1, tonumber(w.end_frame) - frame)
        local note = string.format("CaptionBridge: low confidence (%d%%), check this word", math.floor(conf * 100 + 0.5))
        if ctx.timeline:AddMarker(frame, "Yellow", "check: " .. tostring(w.text):gsub("^%s+", ""), note, duration,
                                  "captionbridge") then
          added = added + 1
        end
      end
    end
  end
  return { added = added, low_confidence_words = low }
end

-- ------------------------------------------------------------------------------------------------------------
-- One subtitle track per speaker (the "One subtitle track per speaker" option; needs speakers)
-- ------------------------------------------------------------------------------------------------------------
local function default_speaker_name(id)
  local n = tostring(id):match("^S(%d+)$")
  if n then return "Speaker " .. tonumber(n) end
  return tostring(id)
end

-- {names = {id -> name}, order = {id...}}: the engine's speakers list, then ids found only on cues
function M.speaker_names(result)
  local names, order = {}, {}
  for _, s in ipairs(list(nn(result.speakers) or {})) do
    local id = type(s) == "table" and nn(s.id)
    if id and not names[id] then
      names[id] = nn(s.name) or default_speaker_name(id)
      order[#order + 1] = id
    end
  end
  for _, c in ipairs(list(nn(result.cues) or {})) do
    for _, id in ipairs(list(nn(c.speakers) or {})) do
      if not names[id] then names[id] = default_speaker_name(id); order[#order + 1] = id end
    end
  end
  return { names = names, order = order }
end

function M.has_speakers(result)
  for _, c in ipairs(list(nn(result.cues) or {})) do
    if #list(nn(c.speakers) or {}) > 0 then return true end
  end
  return false
end

-- {{id, cues}...} for one language: every cue with text in exactly one group, the group of the speaker who starts
-- it (a two-speaker cue keeps its dashed lines on its first speaker's track); "" = no speaker, last
function M.speaker_groups(cues, language, who)
  local groups, order = {}, {}
  for _, c in ipairs(cues) do
    if cue_text(c, language) then
      local owner = list(nn(c.speakers) or {})[1] or ""
      groups[owner] = groups[owner] or {}
      table.insert(groups[owner], c)
    end
  end
  for _, id in ipairs(who.order) do if groups[id] then order[#order + 1] = { id, groups[id] } end end
  if groups[""] then order[#order + 1] = { "", groups[""] } end
  return order
end

-- the first n characters of a UTF-8 string (never half a character)
local function utf8_prefix(text, n)
  local out = {}
  for ch in text:gmatch("[%z\1-\127\192-\255][\128-\191]*") do
    if #out == n then break end
    out[#out + 1] = ch
  end
  return table.concat(out)
end

-- as the Python script names them (the shared job record holds these names): control characters as spaces,
-- trimmed, at most 40 characters
function M.speaker_track_name(id, who, language, languages)
  local name = id ~= "" and (who.names[id] or default_speaker_name(id)) or "No speaker"
  name = utf8_prefix(tostring(name):gsub("[%z\1-\31]+", " "):gsub("^%s+", ""):gsub("%s+$", ""), 40)
  if name == "" then name = "Speaker" end
  if #languages > 1 then
    return name .. " - " .. (M.LANGUAGE_NAMES[language] or language) .. " (CaptionBridge)"
  end
  return name .. " (CaptionBridge)"
end

local function frames_key(a, b) return string.format("%d:%d", a, b) end

-- read back every speaker track of a language: each holds its own cues, together every cue of the language once
function M.verify_speaker_tracks(timeline, tracks, cues, language, start)
  local problems, got, wanted = {}, {}, {}
  for _, t in ipairs(tracks) do
    local mine, theirs = {}, {}
    for _, e in ipairs(t.expected) do mine[#mine + 1] = frames_key(e[1], e[2]) end
    for _, it in ipairs(list(timeline:GetItemListInTrack("subtitle", t.track))) do
      local k = frames_key(tonumber(it:GetStart()), tonumber(it:GetEnd()))
      theirs[#theirs + 1] = k
      got[#got + 1] = k
    end
    table.sort(mine); table.sort(theirs)
    if table.concat(mine, ",") ~= table.concat(theirs, ",") then
      problems[#problems + 1] = string.format("%d captions of %d expected are on %s", #theirs, #mine, t.name)
    end
  end
  for _, c in ipairs(cues) do
    if cue_text(c, language) then wanted[#wanted + 1] = frames_key(start + c.start_frame, start + c.end_frame) end
  end
  table.sort(got); table.sort(wanted)
  if table.concat(got, ",") ~= table.concat(wanted, ",") then
    problems[#problems + 1] = string.format("the speaker tracks hold %d captions, the language has %d", #got, #wanted)
  end
  return { ok = #problems == 0, count = #got, problems = problems }
end

local function delete_tracks(timeline, tracks)
  local indices = {}
  for _, t in ipairs(tracks) do if t.track then indices[#indices + 1] = t.track end end
  table.sort(indices, function(a, b) return a > b end)
  for _, i in ipairs(indices) do clear_track(timeline, i); timeline:DeleteTrack("subtitle", i) end
  for _, t in ipairs(tracks) do t.track = nil end
end

-- one new subtitle track per speaker for one language, each verified, then all together; on any failure every
-- track made here is removed again and the report's method stays nil (the caller's fallbacks take over)
function M.place_speakers(ctx, language, cues, folder, stem, who, languages)
  local start = ctx.clock.start_frame
  local report = { language = language, placed = 0, problems = {}, speakers = {}, two_speaker_cues = 0 }
  for _, c in ipairs(cues) do
    if cue_text(c, language) and #list(nn(c.speakers) or {}) > 1 then
      report.two_speaker_cues = report.two_speaker_cues + 1
    end
  end
  for _, g in ipairs(M.speaker_groups(cues, language, who)) do
    local id, group = g[1], g[2]
    local name = M.speaker_track_name(id, who, language, languages)
    local srt = join(folder, stem .. "." .. language .. "." .. M.safe_name(id ~= "" and id or "no-speaker") .. ".srt")
    local n, werr = M.write_srt(group, language, ctx.clock.num, ctx.clock.den, srt)
    if not n then error({ user = "Cannot write " .. srt .. ": " .. tostring(werr) }) end
    local one = M.place_language(ctx, language, group, srt, name)
    local entry = { speaker = id ~= "" and id or nil, name = name, track = one.track, placed = one.placed, srt = srt,
                    expected = {} }
    for _, c in ipairs(group) do entry.expected[#entry.expected + 1] = { start + c.start_frame, start + c.end_frame } end
    report.speakers[#report.speakers + 1] = entry
    if not one.method then
      report.problems[#report.problems + 1] = name .. ": " .. table.concat(one.problems, "; ")
      delete_tracks(ctx.timeline, report.speakers)
      return report
    end
    report.strategy = report.strategy or one.strategy
  end
  local check = M.verify_speaker_tracks(ctx.timeline, report.speakers, cues, language, start)
  if not check.ok then
    for _, p in ipairs(check.problems) do report.problems[#report.problems + 1] = p end
    delete_tracks(ctx.timeline, report.speakers)
    return report
  end
  report.method, report.placed = "subtitle_track", check.count
  report.track = report.speakers[1] and report.speakers[1].track
  report.track_name = report.speakers[1] and report.speakers[1].name
  return report
end

-- nil, or the message refusing "One subtitle track per speaker" with speakers off (before anything is exported)
function M.check_speaker_options(o)
  local on = (o.speakers ~= nil and o.speakers ~= "" and o.speakers ~= "off") or
    (type(o.speaker_names) == "string" and o.speaker_names:match("%S") ~= nil)
  if o.speaker_tracks and not on then
    return "One subtitle track per speaker needs speaker labels: set Speakers to Detect or a number of speakers " ..
      "(or give their names), or untick One subtitle track per speaker."
  end
  return nil
end

-- the speaker options for the engine
function M.speaker_engine_options(o, out)
  if o.speakers ~= nil and o.speakers ~= "" and o.speakers ~= "off" then out.speakers = o.speakers end
  if type(o.speaker_names) == "string" and o.speaker_names:match("%S") then
    local names = {}
    for n in o.speaker_names:gmatch("[^,]+") do
      n = n:gsub("^%s+", ""):gsub("%s+$", "")
      if n ~= "" then names[#names + 1] = n end
    end
    if #names > 0 then out.speaker_names = json.array(names); out.speakers = out.speakers or "auto" end
  end
  return out
end

-- place one language as the options say: per speaker (when chosen and the result has speakers) or one track
function M.place_for_options(ctx, chosen, result, lang, cues, srt, folder, name, languages)
  if chosen.speaker_tracks and M.has_speakers(result) then
    local r = M.place_speakers(ctx, lang, cues, folder, M.safe_name(name), M.speaker_names(result), languages)
    r.srt = srt  -- the whole language, for the fallbacks
    return r
  end
  return M.place_language(ctx, lang, cues, srt)
end

-- what the job record keeps of a language placed one track per speaker: {speaker id ("" = none) -> track name}
function M.speaker_track_record(speakers)
  local out = {}
  for _, e in ipairs(speakers) do out[e.speaker or ""] = e.name end
  return out
end

function M.placed_summary(lang, r)
  if r.speakers and #r.speakers > 0 then
    local parts = {}
    for _, e in ipairs(r.speakers) do
      parts[#parts + 1] = string.format("%s: %d on track %d", (e.name:gsub(" %(CaptionBridge%)$", "")), e.placed, e.track)
    end
    return string.format("%s: %d captions on %d speaker tracks (%s)", M.LANGUAGE_NAMES[lang] or lang, r.placed,
                         #r.speakers, table.concat(parts, ", "))
  end
  return string.format("%s: %d captions on subtitle track %d", M.LANGUAGE_NAMES[lang] or lang, r.placed, r.track)
end

-- ------------------------------------------------------------------------------------------------------------
-- User interface
-- ------------------------------------------------------------------------------------------------------------
local ConsoleUI = {}
ConsoleUI.__index = ConsoleUI
M.ConsoleUI = ConsoleUI

function ConsoleUI.new() return setmetatable({}, ConsoleUI) end
function ConsoleUI:ask_options(defaults) return defaults end
function ConsoleUI:progress(stage, percent, eta)
  print(string.format("CaptionBridge: %s %d%%%s", tostring(stage), math.floor(percent),
                      eta and string.format(" (about %ds left)", math.floor(eta)) or ""))
end
function ConsoleUI:cancelled() return false end
function ConsoleUI:message(title, text, is_error) print((is_error and "ERROR " or "") .. title .. ": " .. text) end
-- A message with a button for a next step (`action`); true when it was chosen.
function ConsoleUI:offer(title, text, action) self:message(title, text); return false end
function ConsoleUI:close() end

local FusionUI = setmetatable({}, { __index = ConsoleUI })
FusionUI.__index = FusionUI
M.FusionUI = FusionUI

function FusionUI.new(fu, bmd_)
  local self = setmetatable({}, FusionUI)
  self.ui = fu.UIManager
  self.disp = bmd_.UIDispatcher(self.ui)
  return self
end

function FusionUI:ask_options(defaults, context)
  local ui, disp = self.ui, self.disp
  local win = disp:AddWindow({ ID = "CaptionBridgeOptions", WindowTitle = "Generate Captions",
                               Geometry = { 300, 300, 480, 300 } }, ui:VGroup({
    ui:Label({ Text = "Timeline: " .. context.name .. " (" .. context.clock .. ")" }),
    ui:HGroup({ ui:Label({ Text = "Spoken language" }), ui:ComboBox({ ID = "Language" }) }),
    ui:HGroup({ ui:Label({ Text = "Translation" }), ui:ComboBox({ ID = "Translate" }) }),
    ui:HGroup({ ui:Label({ Text = "Speakers" }), ui:ComboBox({ ID = "Speakers" }) }),
    ui:HGroup({ ui:Label({ Text = "Speaker names (e.g. Ana,Ben; optional)" }), ui:LineEdit({ ID = "SpeakerNames" }) }),
    ui:CheckBox({ ID = "SpeakerTracks", Text = "One subtitle track per speaker", Checked = false, Enabled = false }),
    ui:CheckBox({ ID = "Markers", Text = "Mark words to review", Checked = true }),
    ui:HGroup({ ui:Button({ ID = "Cancel", Text = "Cancel" }), ui:Button({ ID = "OK", Text = "Generate" }) }) }))
  local items = win:GetItems()
  local langs = { { "auto", "Detect" }, { "en", "English" }, { "zh", "Chinese" } }
  local trans = { { nil, "No translation" }, { "en", "Add English" }, { "zh", "Add Chinese" } }
  for _, l in ipairs(langs) do items.Language:AddItem(l[2]) end
  for _, t in ipairs(trans) do items.Translate:AddItem(t[2]) end
  local speaker_choices = { { nil, "Off" }, { "auto", "Detect" }, { 2, "2" }, { 3, "3" }, { 4, "4" }, { 5, "5" },
                            { 6, "6" } }
  for _, c in ipairs(speaker_choices) do items.Speakers:AddItem(c[2]) end
  local function speakers_on()  -- one track per speaker is offered only while speakers are on
    return (items.Speakers.CurrentIndex or 0) > 0 or tostring(items.SpeakerNames.Text or ""):match("%S") ~= nil
  end
  local function on_speakers(ev)
    items.SpeakerTracks.Enabled = speakers_on()
    if not speakers_on() then items.SpeakerTracks.Checked = false end
  end
  win.On.Speakers.CurrentIndexChanged = on_speakers
  win.On.SpeakerNames.TextChanged = on_speakers
  local ok = false
  function win.On.OK.Clicked(ev) ok = true; disp:ExitLoop() end
  function win.On.Cancel.Clicked(ev) disp:ExitLoop() end
  function win.On.CaptionBridgeOptions.Close(ev) disp:ExitLoop() end
  win:Show(); disp:RunLoop(); win:Hide()
  if not ok then return nil end
  local options = {}
  for k, v in pairs(defaults) do options[k] = v end
  options.language = langs[(items.Language.CurrentIndex or 0) + 1][1]
  options.translate_to = trans[(items.Translate.CurrentIndex or 0) + 1][1]
  options.review_markers = items.Markers.Checked and true or false
  options.speakers = speaker_choices[(items.Speakers.CurrentIndex or 0) + 1][1]
  options.speaker_names = tostring(items.SpeakerNames.Text or "")
  options.speaker_tracks = (items.SpeakerTracks.Checked and speakers_on()) and true or false
  return options
end

function FusionUI:progress(stage, percent, eta)
  ConsoleUI.progress(self, stage, percent, eta)
  pcall(function()
    if not self.window then
      self.window = self.disp:AddWindow({ ID = "CaptionBridgeProgress", WindowTitle = "CaptionBridge",
                                          Geometry = { 320, 320, 420, 80 } },
                                        self.ui:VGroup({ self.ui:Label({ ID = "Status", Text = "" }) }))
      self.window:Show()
    end
    self.window:GetItems().Status.Text = string.format("%s: %d%%", tostring(stage), math.floor(percent))
  end)
end

function FusionUI:message(title, text, is_error)
  ConsoleUI.message(self, title, text, is_error)
  local ui, disp = self.ui, self.disp
  local win = disp:AddWindow({ ID = "CaptionBridgeMessage", WindowTitle = title, Geometry = { 300, 300, 560, 260 } },
    ui:VGroup({ ui:TextEdit({ ID = "Text", Text = text, ReadOnly = true }), ui:Button({ ID = "OK", Text = "OK" }) }))
  function win.On.OK.Clicked(ev) disp:ExitLoop() end
  function win.On.CaptionBridgeMessage.Close(ev) disp:ExitLoop() end
  win:Show(); disp:RunLoop(); win:Hide()
end

function FusionUI:offer(title, text, action)
  ConsoleUI.message(self, title, text)
  local ui, disp, chosen = self.ui, self.disp, false
  local win = disp:AddWindow({ ID = "CaptionBridgeOffer", WindowTitle = title, Geometry = { 300, 300, 560, 260 } },
    ui:VGroup({ ui:TextEdit({ ID = "Text", Text = text, ReadOnly = true }),
                ui:HGroup({ ui:Button({ ID = "OK", Text = "Close" }), ui:Button({ ID = "Action", Text = action }) }) }))
  function win.On.Action.Clicked(ev) chosen = true; disp:ExitLoop() end
  function win.On.OK.Clicked(ev) disp:ExitLoop() end
  function win.On.CaptionBridgeOffer.Close(ev) disp:ExitLoop() end
  win:Show(); disp:RunLoop(); win:Hide()
  return chosen
end

function FusionUI:close() if self.window then self.window:Hide() end end

-- ------------------------------------------------------------------------------------------------------------
-- The job each timeline was captioned by: <config>/editor-jobs.json, shared with "Generate Captions.py" (same
-- keys, same record), so Review Captions and Update Captions find it whichever script made the captions.
-- ------------------------------------------------------------------------------------------------------------
M.RECORD_FILE = "editor-jobs.json"
local unpack_ = table.unpack or unpack

-- A call to an API method this Resolve version may not have: nil when it is missing or fails.
local function try_call(obj, name, ...)
  if obj == nil then return nil end
  local args, n = { ... }, select("#", ...)
  local ok, result = pcall(function() return obj[name](obj, unpack_(args, 1, n)) end)
  if ok then return result end
  return nil
end

function M.timeline_key(project, timeline)
  local uid = try_call(timeline, "GetUniqueId")
  if uid ~= nil and tostring(uid) ~= "" then return "resolve:uid:" .. tostring(uid) end
  return "resolve:" .. tostring(try_call(project, "GetName") or "") .. "/" ..
    tostring(try_call(timeline, "GetName") or "")
end

local function records_path(engine)
  return join((engine and engine.config) or M.config_dir(), M.RECORD_FILE)
end

-- The records, or nil and what to tell the user when the file is there but is not a JSON object (it is then left
-- as it is: the Premiere panel and the other script keep their jobs in it too).
local function read_records(engine)
  local path = records_path(engine)
  local data = read_file(path)
  if data == nil then return {} end
  local records, why = json.decode(data)
  if type(records) ~= "table" or records[1] ~= nil then
    return nil, "CaptionBridge's record of which job captioned which timeline (" .. path .. ") cannot be read (" ..
      tostring(why or "not a JSON object") .. "). Move it away or repair it, then run this again; it is left as " ..
      "it is until then."
  end
  return records
end

-- The job recorded for this timeline (nil when none); raises the user's message when the records are unreadable.
function M.find_job(engine, project, timeline)
  local records, problem = read_records(engine)
  if not records then error({ user = problem }) end
  local record = records[M.timeline_key(project, timeline)]
  if type(record) ~= "table" or type(nn(record.job)) ~= "string" then return nil end
  if type(nn(record.tracks)) ~= "table" then record.tracks = {} end
  return record
end

-- Written next to the file and renamed over it, so a crash never leaves half a file; a failure only means
-- Update Captions will not find this job (the captions are placed).
function M.record_job(engine, project, timeline, record)
  local path = records_path(engine)
  local records = read_records(engine)
  if not records then return false end  -- never overwrite what cannot be read
  records[M.timeline_key(project, timeline)] = record
  local tmp = path .. ".part"
  if not write_file(tmp, json.encode(records, true)) then return false end
  if not os.rename(tmp, path) then  -- Windows renames onto no existing file
    os.remove(path)
    if not os.rename(tmp, path) then os.remove(tmp); return false end
  end
  return true
end

-- The engine's frame rate and start timecode must be Resolve's: nil when they are, else what to tell the user.
function M.check_result_clock(result, clock)
  local tl = type(result.timeline) == "table" and result.timeline or {}
  if tostring(nn(tl.rate)) ~= clock.rate then
    return "The engine read the timeline at " .. tostring(nn(tl.rate)) .. " fps but Resolve says " .. clock.rate ..
      ": captions would drift, so none were placed. Check the timeline frame rate in Timeline Settings."
  end
  if nn(tl.start_timecode) and tl.start_timecode:gsub(";", ":") ~= clock.start_timecode:gsub(";", ":") then
    return "The engine read a start timecode of " .. tl.start_timecode .. " but the timeline starts at " ..
      clock.start_timecode .. ": captions would land on the wrong frames, so none were placed."
  end
  return nil
end

-- ------------------------------------------------------------------------------------------------------------
-- The whole flow
-- ------------------------------------------------------------------------------------------------------------
M.DEFAULT_OPTIONS = { language = "auto", formats = { "srt", "fcpxml", "json" }, device = "auto",
                      review_markers = true }

local function engine_options(o, clock)
  local out = {}
  for _, k in ipairs({ "language", "translate_to", "preset", "tracks", "formats", "model", "device" }) do
    if o[k] ~= nil and o[k] ~= "" then out[k] = o[k] end
  end
  M.speaker_engine_options(o, out)
  -- Resolve's OTIO export may not say drop-frame: the timeline's own setting decides.
  if clock ~= nil then out.drop_frame = clock.drop_frame and true or false end
  return out
end

local function basename(p) return (tostring(p):match("([^/\\]+)$")) or p end

function M.run(resolve, options, ui, engine)
  ui = ui or ConsoleUI.new()
  local report = { ok = false, languages = {}, messages = {} }
  local function tell(title, text, is_error)
    report.messages[#report.messages + 1] = { title = title, text = text, error = is_error or false }
    ui:message(title, text, is_error)
  end
  local product = M.product_info(resolve)
  report.product = product
  local pm = resolve:GetProjectManager()
  local project = pm and pm:GetCurrentProject()
  local timeline = project and project:GetCurrentTimeline()
  if not timeline then
    tell("Generate Captions", "Open a project and a timeline first (Edit page), then run Generate Captions.", true)
    return report
  end
  local media_pool = project:GetMediaPool()
  local state = M.save_state(resolve, project, timeline, media_pool)
  local ctx = { resolve = resolve, project = project, timeline = timeline, media_pool = media_pool, product = product }
  local work = nil
  local ok, err = pcall(function()
    local clock, cerr = M.timeline_clock(timeline)
    if not clock then error({ user = cerr }) end
    ctx.clock, report.clock = clock, clock
    local name = timeline:GetName() or "Timeline"
    local opts = {}
    for k, v in pairs(M.DEFAULT_OPTIONS) do opts[k] = v end
    for k, v in pairs(options or {}) do opts[k] = v end
    local label = (clock.den == 1 and tostring(clock.num) or string.format("%.3f", clock.num / clock.den)) ..
      (clock.drop_frame and " DF" or "") .. " fps, starts " .. clock.start_timecode
    local chosen = ui:ask_options(opts, { name = name, clock = label })
    if not chosen then report.cancelled = true; return end
    local speaker_refusal = M.check_speaker_options(chosen)
    if speaker_refusal then error({ user = speaker_refusal }) end
    local eng, eerr = engine, nil
    if not eng then eng, eerr = Engine.discover(nil, true, ui) end
    if not eng then error({ user = eerr }) end
    local werr
    work, werr = M.temp_dir()
    if not work then error({ user = "Cannot create a private temporary folder: " .. tostring(werr) }) end
    local path, kind = M.export_timeline(resolve, timeline, work, product)
    if not path then error({ user = kind }) end
    report.export = { path = path, kind = kind }
    ui:progress("sending the timeline to the engine", 0, nil)
    local id, serr = eng:submit(path, engine_options(chosen, clock))
    if not id then error({ user = serr }) end
    report.job = id
    local status, werr = eng:wait(id, ui, chosen.poll or 0.5)
    if not status then error({ user = werr }) end
    if status.state ~= "succeeded" then
      if status.state == "cancelled" then
        tell("Generate Captions", "Cancelled; nothing was changed on the timeline.")
      else
        local e = nn(status.error)
        tell("Generate Captions", "The engine could not caption this timeline: " ..
          tostring(type(e) == "table" and nn(e.message) or status.state), true)
      end
      return
    end
    ui:progress("fetching the captions", 100, nil)
    local result, rerr = eng:result(id)
    if not result then error({ user = rerr }) end
    local clock_problem = M.check_result_clock(result, clock)
    if clock_problem then error({ user = clock_problem }) end
    local folder = chosen.output_dir or join(os.getenv("HOME") or os.getenv("USERPROFILE") or temp_base(), "Documents",
                                             "CaptionBridge")
    folder = join(folder, M.safe_name(name) .. " " .. os.date("%Y-%m-%d %H%M%S"))
    mkdir(folder)
    report.folder = folder
    local fcpxml
    for _, file in ipairs(result.files or {}) do
      local target = join(folder, basename(file))
      local dl, derr = eng:download(id, file, target)
      if not dl then error({ user = derr }) end
      if file:lower():match("%.fcpxml$") then fcpxml = target end
    end
    local cues = result.cues or {}
    local languages = list(result.languages or {})
    if #languages == 0 then languages = { nn(result.source_language) or "und" } end
    if #cues == 0 then
      report.ok = true
      tell("Generate Captions", "No speech was found on the timeline's audio tracks; no captions were added.")
      return
    end
    local bin = M.caption_bin(media_pool)
    if bin then media_pool:SetCurrentFolder(bin) end
    local failed = {}
    for _, lang in ipairs(languages) do
      local srt = join(folder, M.safe_name(name) .. "." .. lang .. ".srt")
      local n, werr2 = M.write_srt(cues, lang, clock.num, clock.den, srt)
      if not n then error({ user = "Cannot write " .. srt .. ": " .. tostring(werr2) }) end
      local r = M.place_for_options(ctx, chosen, result, lang, cues, srt, folder, name, languages)
      report.languages[lang] = r
      if not r.method then failed[#failed + 1] = lang end
    end
    if chosen.review_markers ~= false and result.words then
      report.markers = M.add_review_markers(ctx, result.words)
    end
    local problems = {}
    for _, lang in ipairs(failed) do
      for _, p in ipairs(report.languages[lang].problems) do problems[#problems + 1] = p end
    end
    local placed, tracks, speaker_tracks = {}, {}, {}
    for _, lang in ipairs(languages) do
      local r = report.languages[lang]
      if r.method == "subtitle_track" then
        placed[#placed + 1] = lang
        tracks[lang] = r.track_name
        if r.speakers and #r.speakers > 0 then speaker_tracks[lang] = M.speaker_track_record(r.speakers) end
      end
    end
    if #placed > 0 then  -- what Update Captions replaces later: this job's tracks on this timeline
      -- speaker_tracks (one track per speaker): language -> {speaker id ("" = none) -> track name}, as the
      -- Python script records it, so either script can update the other's job
      M.record_job(eng, project, timeline, { job = id, version = 0, timeline = name,
                                             at = os.date("%Y-%m-%d %H:%M:%S"), tracks = tracks,
                                             speaker_tracks = speaker_tracks })
    end
    if #failed > 0 then
      local imported = M.fallback_fcpxml(ctx, fcpxml, failed, cues)
      if imported then
        for _, lang in ipairs(failed) do report.languages[lang].method = "fcpxml_timeline" end
        tell("Captions on a new timeline", "Resolve did not keep captions placed on '" .. name .. "' (" ..
          table.concat(problems, "; ") .. "). They are on a new timeline '" .. imported.timeline_name ..
          "' (subtitle tracks, same timecodes). Open it, select the subtitle track's clips, copy, then on '" .. name ..
          "' put the playhead at " .. clock.start_timecode .. ", select the subtitle track and paste.", true)
      else
        local steps = {}
        for _, lang in ipairs(failed) do
          report.languages[lang].method = "sidecar"
          steps[#steps + 1] = "- " .. (M.LANGUAGE_NAMES[lang] or lang) .. ": " .. report.languages[lang].srt
        end
        tell("Import the captions by hand", "Resolve did not place the captions on '" .. name .. "' (" ..
          table.concat(problems, "; ") .. "), so nothing was left half done. The caption files are ready:\n" ..
          table.concat(steps, "\n") .. "\n\nFor each file: File > Import > Subtitle..., choose it, then drag it " ..
          "from the Media Pool onto a subtitle track at the very start of the timeline (" .. clock.start_timecode ..
          ", record frame " .. string.format("%d", clock.start_frame) .. ") with snapping on. Its first caption " ..
          "then starts at " .. M.frames_to_timecode(clock.start_frame + cues[1].start_frame, clock.nominal,
                                                    clock.drop_frame) .. ".", true)
      end
    else
      report.ok = true
      local parts = {}
      for _, lang in ipairs(languages) do
        local r = report.languages[lang]
        parts[#parts + 1] = M.placed_summary(lang, r)
      end
      local extra, two = "", 0
      if chosen.speaker_tracks and not M.has_speakers(result) then
        extra = extra .. "\nNo speakers were found in these captions (Speakers was " ..
          tostring(chosen.speakers or "off") .. "), so each language is on one track."
      end
      for _, lang in ipairs(placed) do two = two + (report.languages[lang].two_speaker_cues or 0) end
      if two > 0 then
        extra = extra .. string.format("\n%d two-speaker captions (one dashed line per speaker) are on the track " ..
          "of the speaker who starts them.", two)
      end
      if report.markers and report.markers.added > 0 then
        extra = extra .. string.format("\n%d yellow markers show words to check.", report.markers.added)
      end
      extra = extra .. "\nTo check them against the sound and correct them: Workspace > Scripts > Review " ..
        "Captions; then Update Captions puts the approved version here."
      local text = table.concat(parts, ", ") .. ". Files: " .. folder .. extra
      if not ui.offer then
        tell("Captions added", text)
      else  -- the dialog's own button opens the review page on these captions now
        report.messages[#report.messages + 1] = { title = "Captions added", text = text, error = false }
        if ui:offer("Captions added", text, "Review Captions") then report.review = M.review(resolve, ui, eng) end
      end
    end
  end)
  if not ok then
    if type(err) == "table" and err.user then
      tell("Generate Captions", err.user, true)
    else
      tell("Generate Captions", "CaptionBridge script error (please report it): " .. tostring(err), true)
    end
  end
  M.restore_state(resolve, project, media_pool, state)
  if work then M.remove_tree(work) end
  ui:close()
  return report
end

-- ------------------------------------------------------------------------------------------------------------
-- Review Captions and Update Captions (menu entries of their own; the same flow as "Generate Captions.py")
-- ------------------------------------------------------------------------------------------------------------
local function current_timeline(resolve)
  local pm = try_call(resolve, "GetProjectManager")
  local project = try_call(pm, "GetCurrentProject")
  return project, try_call(project, "GetCurrentTimeline")
end

-- Opens a web address in the user's browser: Fusion's own bmd.openurl, else the operating system's opener.
function M.open_url(url)
  if bmd and bmd.openurl then return bmd.openurl(url) end
  if IS_WINDOWS then return os.execute('start "" "' .. url .. '"') end
  if exists("/System/Library/CoreServices/SystemVersion.plist") then
    return os.execute("open " .. quote(url) .. " >/dev/null 2>&1")
  end
  return os.execute("xdg-open " .. quote(url) .. " >/dev/null 2>&1 &")
end

-- Open the engine's review page on the job that captioned the current timeline (the job list otherwise).
function M.review(resolve, ui, engine, open_url)
  ui = ui or ConsoleUI.new()
  local report = { ok = false, messages = {} }
  local function tell(text, is_error)
    report.messages[#report.messages + 1] = { title = "Review Captions", text = text, error = is_error or false }
    ui:message("Review Captions", text, is_error)
  end
  local ok, err = pcall(function()
    local project, timeline = current_timeline(resolve)
    local eng, eerr = engine, nil
    if not eng then eng, eerr = Engine.discover(nil, true, ui, "Review Captions") end
    if not eng then error({ user = eerr }) end
    local record = timeline and M.find_job(eng, project, timeline) or nil
    local link, lerr, status = eng:json("POST", "/v1/review/links", record and { job_id = record.job } or {})
    local lost = nil
    if not link and record and status == 404 then  -- the job expired on the engine: show the list instead
      lost, record = record.job, nil
      link, lerr = eng:json("POST", "/v1/review/links", {})
    end
    if not link then error({ user = lerr }) end
    report.url, report.job = link.url, record and record.job or nil
    local opener = open_url or M.open_url
    opener(link.url)
    if lost then
      tell("The engine no longer has job " .. lost .. ", which captioned this timeline (deleted, or its results " ..
        "expired): the review page shows every job (" .. link.url .. ").")
    elseif record then
      tell("The review page is open in your browser (" .. link.url .. "). Correct the captions, Approve, then " ..
        "run Workspace > Scripts > Update Captions.")
    else
      tell("No CaptionBridge job is recorded for this timeline: the review page shows every job (" .. link.url ..
        ").")
    end
    report.ok = true
  end)
  if not ok then
    tell(type(err) == "table" and err.user or "CaptionBridge script error (please report it): " .. tostring(err), true)
  end
  ui:close()
  return report
end

local function track_indices_named(timeline, name, exclude)
  local out = {}
  for i = 1, (tonumber(timeline:GetTrackCount("subtitle")) or 0) do
    if i ~= exclude and timeline:GetTrackName("subtitle", i) == name then out[#out + 1] = i end
  end
  return out
end

local function language_list(names)
  local out = {}
  for _, lang in ipairs(names) do out[#out + 1] = M.LANGUAGE_NAMES[lang] or lang end
  return table.concat(out, ", ")
end

-- Update Captions for a language placed one track per speaker: the approved version, its speakers as reviewed (a cue
-- given to another speaker moves track, a renamed speaker's track takes the new name, a new speaker gets a track),
-- goes on new speaker tracks, each verified by read-back; only then are the language's old speaker tracks removed,
-- and the record says which tracks are the job's now. A failed placement removes the new tracks and leaves the old
-- ones as they were (the report's method stays nil).
local function update_speaker_tracks(ctx, record, lang, version, cues, folder, stem, languages)
  local timeline = ctx.timeline
  local who = M.has_speakers(version) and M.speaker_names(version) or { names = {}, order = {} }
  local r = M.place_speakers(ctx, lang, cues, folder, stem, who, languages)
  if r.method and #r.speakers == 0 then  -- nothing to put in their place: the old tracks stay
    r.method = nil
    r.problems[#r.problems + 1] = "the approved version has no " .. (M.LANGUAGE_NAMES[lang] or lang) .. " captions"
  end
  if not r.method then return r end
  local old_names, new_tracks = {}, {}
  for _, old in pairs(record.speaker_tracks[lang]) do old_names[old] = true end
  for _, e in ipairs(r.speakers) do new_tracks[e.track] = true end
  local old, present = {}, {}
  for i = 1, (tonumber(timeline:GetTrackCount("subtitle")) or 0) do
    if not new_tracks[i] then
      local track_name = timeline:GetTrackName("subtitle", i)
      if track_name ~= nil then
        present[track_name] = true
        if old_names[track_name] then old[#old + 1] = i end
      end
    end
  end
  r.missing_tracks = {}  -- the user renamed or deleted these: nothing of theirs is removed, and Update says so
  for old_name in pairs(old_names) do
    if not present[old_name] then r.missing_tracks[#r.missing_tracks + 1] = old_name end
  end
  table.sort(r.missing_tracks)
  for k = #old, 1, -1 do
    clear_track(timeline, old[k])
    if timeline:DeleteTrack("subtitle", old[k]) then
      for _, e in ipairs(r.speakers) do
        if old[k] < e.track then e.track = e.track - 1 end
      end
    end
  end
  for _, e in ipairs(r.speakers) do timeline:SetTrackName("subtitle", e.track, e.name) end
  local check = M.verify_speaker_tracks(timeline, r.speakers, cues, lang, ctx.clock.start_frame)  -- once more
  r.placed = check.count
  for _, p in ipairs(check.problems) do r.problems[#r.problems + 1] = p end
  r.track, r.track_name = r.speakers[1].track, r.speakers[1].name
  record.speaker_tracks[lang] = M.speaker_track_record(r.speakers)
  record.tracks[lang] = r.speakers[1].name
  return r
end

-- Replace the subtitle tracks a job put on the current timeline with its latest approved version. The new version
-- goes on a new track first and is verified by read-back; only then is the old track of that language removed
-- (a failed placement leaves the previous captions as they were).
function M.update(resolve, ui, engine)
  ui = ui or ConsoleUI.new()
  local report = { ok = false, languages = {}, messages = {}, notes = {} }
  local function tell(text, is_error)
    report.messages[#report.messages + 1] = { title = "Update Captions", text = text, error = is_error or false }
    ui:message("Update Captions", text, is_error)
  end
  local project, timeline = current_timeline(resolve)
  if not timeline then
    tell("Open the timeline that was captioned first (Edit page), then run Update Captions.", true)
    ui:close()
    return report
  end
  local media_pool = project:GetMediaPool()
  local state = M.save_state(resolve, project, timeline, media_pool)
  local ctx = { resolve = resolve, project = project, timeline = timeline, media_pool = media_pool,
                product = M.product_info(resolve) }
  local work = nil
  local ok, err = pcall(function()
    local clock, cerr = M.timeline_clock(timeline)
    if not clock then error({ user = cerr }) end
    ctx.clock = clock
    local name = timeline:GetName() or "Timeline"
    local eng, eerr = engine, nil
    if not eng then eng, eerr = Engine.discover(nil, true, ui, "Update Captions") end
    if not eng then error({ user = eerr }) end
    local record = M.find_job(eng, project, timeline)
    if not record then
      error({ user = "No CaptionBridge job is recorded for '" .. name .. "': run Generate Captions on it first " ..
        "(then Review Captions and Approve)." })
    end
    local version, verr, _, code = eng:json("GET", "/v1/jobs/" .. record.job .. "/versions/latest")
    if not version then
      if code == "version_not_found" then
        error({ user = "No approved version of these captions yet: run Review Captions, correct them, press " ..
          "Approve, then run Update Captions again. (" .. verr .. ")" })
      elseif code == "job_not_found" then
        error({ user = "The engine no longer has job " .. record.job .. ", which captioned '" .. name .. "' (it " ..
          "was deleted, or the engine keeps its jobs in another folder now). Nothing was changed: run Generate " ..
          "Captions again to caption this timeline anew. (" .. verr .. ")" })
      end
      error({ user = verr })
    end
    report.version = nn(version.version)
    local clock_problem = M.check_result_clock(version, clock)
    if clock_problem then error({ user = clock_problem }) end
    local cues = list(version.cues or {})
    local languages = {}
    for _, lang in ipairs(list(version.languages or {})) do
      if record.tracks[lang] then languages[#languages + 1] = lang end
    end
    if #languages == 0 then
      for lang in pairs(record.tracks) do languages[#languages + 1] = lang end
      table.sort(languages)
    end
    local werr
    work, werr = M.temp_dir()
    if not work then error({ user = "Cannot create a private temporary folder: " .. tostring(werr) }) end
    local bin = M.caption_bin(media_pool)
    if bin then media_pool:SetCurrentFolder(bin) end
    local failed, missing, missing_speaker_tracks = {}, {}, {}
    if type(nn(record.speaker_tracks)) ~= "table" then record.speaker_tracks = {} end
    for _, lang in ipairs(languages) do
      local old_name = record.tracks[lang]
      local r
      if type(record.speaker_tracks[lang]) == "table" and next(record.speaker_tracks[lang]) ~= nil then
        r = update_speaker_tracks(ctx, record, lang, version, cues, work,
                                  M.safe_name(name) .. ".v" .. tostring(report.version), languages)
        report.languages[lang] = r
        if not r.method or #r.problems > 0 then failed[#failed + 1] = lang end
        for _, t in ipairs(r.missing_tracks or {}) do missing_speaker_tracks[#missing_speaker_tracks + 1] = t end
      else
        local srt = join(work, M.safe_name(name) .. ".v" .. tostring(report.version) .. "." .. lang .. ".srt")
        local n, serr = M.write_srt(cues, lang, clock.num, clock.den, srt)
        if not n then error({ user = "Cannot write " .. srt .. ": " .. tostring(serr) }) end
        r = M.place_language(ctx, lang, cues, srt)
        report.languages[lang] = r
        if not r.method then
          failed[#failed + 1] = lang
        else
          local new_index = r.track
          local old = track_indices_named(timeline, old_name, new_index)
          if #old == 0 then missing[#missing + 1] = lang end
          for k = #old, 1, -1 do
            clear_track(timeline, old[k])
            if timeline:DeleteTrack("subtitle", old[k]) and old[k] < new_index then new_index = new_index - 1 end
          end
          timeline:SetTrackName("subtitle", new_index, old_name)
          r.track, r.track_name = new_index, old_name
          local start, expected = clock.start_frame, {}
          for _, c in ipairs(cues) do
            if cue_text(c, lang) then expected[#expected + 1] = { start + c.start_frame, start + c.end_frame } end
          end
          local check = M.verify_track(timeline, new_index, expected)  -- once more, after the old track went
          r.placed = check.count
          if not check.ok then
            for _, p in ipairs(check.problems) do r.problems[#r.problems + 1] = p end
            failed[#failed + 1] = lang
          end
        end
      end
    end
    local v = tostring(report.version)
    if #failed > 0 then
      local problems = {}
      for _, lang in ipairs(failed) do
        for _, p in ipairs(report.languages[lang].problems) do problems[#problems + 1] = p end
      end
      tell("Version " .. v .. " could not be placed for " .. language_list(failed) .. " (" ..
        table.concat(problems, "; ") .. "); the previous captions of " ..
        (#failed == 1 and "that language" or "those languages") .. " were left as they were.", true)
    end
    local done = {}
    for _, lang in ipairs(languages) do
      local bad = false
      for _, f in ipairs(failed) do if f == lang then bad = true end end
      if not bad then done[#done + 1] = lang end
    end
    if #done > 0 then
      record.version = report.version
      M.record_job(eng, project, timeline, record)
    end
    for _, lang in ipairs(missing) do
      report.notes[#report.notes + 1] = "There was no subtitle track named '" .. record.tracks[lang] .. "' on '" ..
        name .. "' any more (renamed or deleted), so nothing old was removed for " ..
        (M.LANGUAGE_NAMES[lang] or lang) .. ": if you renamed it, delete that track yourself."
    end
    for _, t in ipairs(missing_speaker_tracks) do
      report.notes[#report.notes + 1] = "There was no subtitle track named '" .. t .. "' on '" .. name .. "' any " ..
        "more (renamed or deleted), so nothing old was removed for it: if you renamed it, delete that track yourself."
    end
    if #done > 0 and #failed == 0 then
      report.ok = true
      local parts = {}
      for _, lang in ipairs(done) do parts[#parts + 1] = M.placed_summary(lang, report.languages[lang]) end
      local text = "Captions updated to version " .. v .. ": " .. table.concat(parts, ", ") .. "."
      if #report.notes > 0 then text = text .. "\n" .. table.concat(report.notes, "\n") end
      tell(text)
    end
  end)
  if not ok then
    tell(type(err) == "table" and err.user or "CaptionBridge script error (please report it): " .. tostring(err), true)
  end
  M.restore_state(resolve, project, media_pool, state)
  if work then M.remove_tree(work) end
  ui:close()
  return report
end

-- The Resolve app and a dialog UI inside Resolve (nil app outside it).
local function app_and_ui()
  local app = resolve or (Resolve and Resolve()) or (bmd and bmd.scriptapp("Resolve"))
  if not app then return nil end
  local ui
  local fusion_app = fu or fusion or (app.Fusion and app:Fusion())
  if fusion_app and bmd and fusion_app.UIManager then
    local ok, made = pcall(FusionUI.new, fusion_app, bmd)
    if ok then ui = made end
  end
  return app, ui or ConsoleUI.new()
end

-- A menu entry: ``run(app, ui)`` inside Resolve, or a one-line message where there is no Resolve.
local function inside_resolve(entry, run)
  local app, ui = app_and_ui()
  if not app then
    print(entry .. " must run inside DaVinci Resolve (Workspace > Scripts > " .. entry .. ").")
    return
  end
  return run(app, ui)
end

function M.main()
  return inside_resolve("Generate Captions", function(app, ui) return M.run(app, nil, ui) end)
end

function M.main_review()
  return inside_resolve("Review Captions", M.review)
end

function M.main_update()
  return inside_resolve("Update Captions", M.update)
end

if CAPTIONBRIDGE_NO_MAIN then
  return M
end
M.main()
