-- A fake DaVinci Resolve for the Lua entry script (same documented behaviours as tests/fixtures/fake_resolve.py):
-- absolute record frames, live export constants, "per_cue" / "whole_file" / "nothing" AppendToTimeline modes
-- (always truthy), silent drop of overlapping placements, Studio-only calls that block on the free edition,
-- an SRT read as an editor reads it (milliseconds floored to frames).

local Fake = {}

local function new_object(app, class, fields)
  local obj = fields or {}
  return setmetatable(obj, { __index = function(t, name)
    local method = class[name]
    if method == nil then error("Resolve API has no method " .. tostring(name), 2) end
    return function(self, ...)
      if app.blocked then error("called " .. name .. " while the Studio upsell dialog blocks Resolve", 2) end
      app.calls[#app.calls + 1] = name
      return method(self, ...)
    end
  end })
end

local Item, MediaPoolItem, Folder, Timeline, MediaPool, Project, PM, App = {}, {}, {}, {}, {}, {}, {}, {}

function Item.GetStart(self) return self.start end
function Item.GetEnd(self) return self.stop end
function Item.GetName(self) return self.text end

function MediaPoolItem.GetName(self) return self.name end

function Folder.GetName(self) return self.name end
function Folder.GetSubFolderList(self) return self.subfolders end

local function rate_of(tl)
  local value = tonumber((tl.settings.timelineFrameRate:gsub("DF", "")))
  local nominal = math.floor(value + 0.5)
  if math.abs(value - nominal) > 0.001 then return nominal * 1000, 1001 end
  return nominal, 1
end

function Timeline.GetName(self) return self.name end
function Timeline.GetSetting(self, key) return self.settings[key] or "" end
function Timeline.GetStartFrame(self) return self.start_frame end
function Timeline.GetStartTimecode(self) return self.start_tc end
function Timeline.GetCurrentTimecode(self) return self.playhead end
function Timeline.SetCurrentTimecode(self, tc) self.playhead = tc; return true end
function Timeline.GetTrackCount(self, kind) return #(self.tracks[kind] or {}) end
function Timeline.AddTrack(self, kind)
  local list = self.tracks[kind]
  if not list then return false end
  list[#list + 1] = { name = kind .. " " .. (#list + 1), items = {}, enabled = true, locked = false }
  return true
end
function Timeline.DeleteTrack(self, kind, i) return table.remove(self.tracks[kind], i) ~= nil end
function Timeline.SetTrackName(self, kind, i, name) self.tracks[kind][i].name = name; return true end
function Timeline.GetTrackName(self, kind, i) return self.tracks[kind][i].name end
function Timeline.GetIsTrackEnabled(self, kind, i) return self.tracks[kind][i].enabled end
function Timeline.SetTrackEnable(self, kind, i, v) self.tracks[kind][i].enabled = v; return true end
function Timeline.GetIsTrackLocked(self, kind, i) return self.tracks[kind][i].locked end
function Timeline.SetTrackLock(self, kind, i, v) self.tracks[kind][i].locked = v; return true end
function Timeline.GetItemListInTrack(self, kind, i)
  local track = (self.tracks[kind] or {})[i]
  local out = {}
  if not track then return out end
  for _, it in ipairs(track.items) do out[#out + 1] = it end
  table.sort(out, function(a, b) return a.start < b.start end)
  return out
end
function Timeline.DeleteClips(self, items)
  local doomed = {}
  for _, it in pairs(items) do doomed[it] = true end
  for _, tracks in pairs(self.tracks) do
    for _, track in ipairs(tracks) do
      local keep = {}
      for _, it in ipairs(track.items) do if not doomed[it] then keep[#keep + 1] = it end end
      track.items = keep
    end
  end
  return true
end
function Timeline.AddMarker(self, frame, color, name, note, duration, data)
  if self.markers[frame] then return false end
  self.markers[frame] = { color = color, name = name, note = note, duration = duration }
  self.marker_count = self.marker_count + 1
  return true
end
function Timeline.GetMarkInOut(self) return { video = { ["in"] = self.marks_in, out = self.marks_out } } end
function Timeline.SetMarkInOut(self, i, o) self.marks_in, self.marks_out = i, o; return true end
function Timeline.ClearMarkInOut(self) self.marks_in, self.marks_out = nil, nil; return true end
function Timeline.CreateSubtitlesFromAudio(self)
  if self.app.studio then return true end
  self.app.upsell_dialogs = self.app.upsell_dialogs + 1
  self.app.blocked = true
  return false
end

local OTIO_TEMPLATE = [[{"OTIO_SCHEMA": "Timeline.1", "metadata": {}, "name": "%s",
"global_start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": %.17g, "value": %d},
"tracks": {"OTIO_SCHEMA": "Stack.1", "metadata": {}, "name": "", "source_range": null, "effects": [], "markers": [],
 "enabled": true, "children": [{"OTIO_SCHEMA": "Track.1", "metadata": {}, "name": "Audio 1", "source_range": null,
 "effects": [], "markers": [], "enabled": true, "kind": "Audio", "children": [{"OTIO_SCHEMA": "Clip.2",
 "metadata": {}, "name": "A001.wav", "source_range": {"OTIO_SCHEMA": "TimeRange.1",
 "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": %.17g, "value": 0},
 "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": %.17g, "value": %d}}, "effects": [], "markers": [],
 "enabled": true, "media_references": {"DEFAULT_MEDIA": {"OTIO_SCHEMA": "ExternalReference.1", "metadata": {},
 "name": "", "available_range": null, "available_image_bounds": null, "target_url": "/Volumes/Media/A001.wav"}},
 "active_media_reference_key": "DEFAULT_MEDIA"}]}]}}]]

function Timeline.Export(self, path, kind)
  local app = self.app
  if kind ~= app.EXPORT_OTIO or (app.version[1] < 18 or (app.version[1] == 18 and app.version[2] < 5)) then
    return false
  end
  local num, den = rate_of(self)
  local f = io.open(path, "w")
  f:write(string.format(OTIO_TEMPLATE, self.name, num / den, self.start_frame, num / den, num / den, self.duration))
  f:close()
  return true
end

local function overlaps(track, start, stop)
  for _, it in ipairs(track.items) do
    if it.start < stop and start < it.stop then return true end
  end
  return false
end

local function place(tl, index, start, stop, text)
  local track = tl.tracks.subtitle[index]
  if not track or track.locked or overlaps(track, start, stop) then return nil end
  local item = new_object(tl.app, Item, { start = start, stop = stop, text = text })
  track.items[#track.items + 1] = item
  return item
end

function MediaPool.GetRootFolder(self) return self.root end
function MediaPool.AddSubFolder(self, parent, name)
  local f = new_object(self.app, Folder, { name = name, subfolders = {} })
  parent.subfolders[#parent.subfolders + 1] = f
  return f
end
function MediaPool.GetCurrentFolder(self) return self.current end
function MediaPool.SetCurrentFolder(self, f) self.current = f; return true end
function MediaPool.ImportMedia(self, paths)
  local tl = self.app.project.current
  local num, den = rate_of(tl)
  local out = {}
  for _, path in ipairs(paths) do
    local f = io.open(path, "r")
    if f then
      local data = f:read("*a") .. "\n\n"; f:close()
      local events = {}
      for h1, m1, s1, ms1, h2, m2, s2, ms2, body in data:gmatch(
          "(%d+):(%d+):(%d+),(%d+) %-%-> (%d+):(%d+):(%d+),(%d+)\n(.-)\n\n") do
        local a = ((tonumber(h1) * 60 + tonumber(m1)) * 60 + tonumber(s1)) * 1000 + tonumber(ms1)
        local b = ((tonumber(h2) * 60 + tonumber(m2)) * 60 + tonumber(s2)) * 1000 + tonumber(ms2)
        events[#events + 1] = { math.floor(a * num / (1000 * den)), math.floor(b * num / (1000 * den)), body }
      end
      out[#out + 1] = new_object(self.app, MediaPoolItem, { name = path, events = events, kind = "subtitle" })
    end
  end
  return out
end
function MediaPool.AppendToTimeline(self, infos)
  local app = self.app
  local tl = app.project.current
  local placed = {}
  for _, info in ipairs(infos) do
    local item = info.mediaPoolItem
    if app.placement ~= "nothing" and item and item.kind == "subtitle" then
      local record = info.recordFrame or tl.start_frame
      if info.startFrame ~= nil and info.endFrame ~= nil then
        if app.placement == "per_cue" then
          local text = ""
          for _, e in ipairs(item.events) do if e[1] == info.startFrame then text = e[3] end end
          placed[#placed + 1] = place(tl, info.trackIndex, record, record + info.endFrame - info.startFrame, text)
        end
      else
        for _, e in ipairs(item.events) do
          placed[#placed + 1] = place(tl, info.trackIndex, record + e[1], record + e[2], e[3])
        end
      end
    end
  end
  if #placed == 0 then return { true } end  -- truthy whatever happened
  return placed
end
local function fcp_seconds(text)
  local n, d = tostring(text):match("^(%-?%d+)/(%d+)s$")
  if n then return tonumber(n) / tonumber(d) end
  return tonumber((tostring(text):gsub("s$", "")))
end

-- Reads an FCPXML's <caption> elements (anchored to the spine's gap) onto subtitle tracks of a new timeline.
function MediaPool.ImportTimelineFromFile(self, path, options)
  local app = self.app
  if not app.fcpxml_import then return nil end
  local f = io.open(path, "r")
  if not f then return nil end
  local data = f:read("*a"); f:close()
  local fd = fcp_seconds(data:match('frameDuration="([^"]+)"'))
  local gap_offset = fcp_seconds(data:match('<gap [^>]-offset="([^"]+)"'))
  local gap_start = fcp_seconds(data:match('<gap [^>]-start="([^"]+)"'))
  local current = app.project.current
  local tl = new_object(app, Timeline, {
    app = app, name = options and options.timelineName or "Imported", settings = current.settings,
    start_frame = current.start_frame, start_tc = current.start_tc, duration = current.duration,
    playhead = current.start_tc, markers = {}, marker_count = 0, tracks = { video = {}, audio = {}, subtitle = {} } })
  local roles = {}
  for attrs in data:gmatch("<caption ([^>]+)>") do
    local role = attrs:match('role="([^"]+)"')
    if not roles[role] then
      Timeline.AddTrack(tl, "subtitle")
      roles[role] = #tl.tracks.subtitle
    end
    local start = math.floor((gap_offset + fcp_seconds(attrs:match('offset="([^"]+)"')) - gap_start) / fd + 0.5)
    local dur = math.floor(fcp_seconds(attrs:match('duration="([^"]+)"')) / fd + 0.5)
    local track = tl.tracks.subtitle[roles[role]]
    track.items[#track.items + 1] = new_object(app, Item, { start = start, stop = start + dur,
                                                            text = attrs:match('name="([^"]*)"') })
  end
  app.imported = tl
  app.project.current = tl
  return tl
end
function MediaPool.DeleteTimelines() return true end

function Project.GetName(self) return rawget(self, "name") or "Project" end
function Project.GetCurrentTimeline(self) return self.current end
function Project.SetCurrentTimeline(self, tl) self.current = tl; return true end
function Project.GetMediaPool(self) return self.media_pool end
function PM.GetCurrentProject(self) return self.app.project end

function App.GetProductName(self) return self.studio and "DaVinci Resolve Studio" or "DaVinci Resolve" end
function App.GetVersion(self) return { self.version[1], self.version[2], self.version[3], 0, "" } end
function App.GetProjectManager(self) return self.pm end
function App.GetCurrentPage(self) return self.page end
function App.OpenPage(self, p) self.page = p; return true end

function Fake.new(o)
  local app = { calls = {}, upsell_dialogs = 0, blocked = false, studio = o.studio ~= false,
                version = o.version or { 21, 1, 0 }, placement = o.placement or "per_cue", page = "edit",
                fcpxml_import = o.fcpxml_import or false,
                EXPORT_OTIO = {}, EXPORT_FCP_7_XML = {}, EXPORT_NONE = {} }
  local resolve = new_object(app, App, app)
  local tl = new_object(app, Timeline, {
    app = app, name = o.name or "Reel 1",
    settings = { timelineFrameRate = o.rate or "25", timelineDropFrameTimecode = o.df and "1" or "0" },
    start_frame = o.start_frame or 90000, start_tc = o.start_tc or "01:00:00:00", duration = o.duration or 25 * 900,
    playhead = o.start_tc or "01:00:00:00", marks_in = 10, marks_out = 500, markers = {}, marker_count = 0,
    tracks = { video = { { name = "Video 1", items = {}, enabled = true, locked = false } },
               audio = { { name = "Audio 1", items = {}, enabled = true, locked = false },
                         { name = "Audio 2", items = {}, enabled = false, locked = true } },
               subtitle = {} } })
  local mp = new_object(app, MediaPool, { app = app })
  mp.root = new_object(app, Folder, { name = "Master", subfolders = {} })
  mp.current = mp.root
  app.project = new_object(app, Project, { current = tl, media_pool = mp })
  app.pm = new_object(app, PM, { app = app })
  app.timeline = tl
  return resolve, app
end

function Fake.dump(app)
  local tl = app.timeline
  local out = { subtitle = {}, markers = {}, upsell_dialogs = app.upsell_dialogs, page = app.page,
                playhead = tl.playhead, marks = { tl.marks_in, tl.marks_out }, current_is_original =
                app.project.current == tl, folder = app.project.media_pool.current.name, track_states = {} }
  for i, track in ipairs(tl.tracks.subtitle) do
    local items = {}
    for _, it in ipairs(Timeline.GetItemListInTrack(tl, "subtitle", i)) do
      items[#items + 1] = { it.start, it.stop, it.text }
    end
    out.subtitle[i] = { name = track.name, items = items }
  end
  for frame in pairs(tl.markers) do out.markers[#out.markers + 1] = frame end
  table.sort(out.markers)
  for _, kind in ipairs({ "video", "audio" }) do
    for _, t in ipairs(tl.tracks[kind]) do out.track_states[#out.track_states + 1] = { t.enabled, t.locked } end
  end
  if rawget(app, "imported") then
    out.imported = { name = app.imported.name, tracks = {} }
    for i, track in ipairs(app.imported.tracks.subtitle) do
      local starts = {}
      for _, it in ipairs(track.items) do starts[#starts + 1] = it.start end
      out.imported.tracks[i] = starts
    end
  end
  local called = {}
  for _, c in ipairs(app.calls) do called[c] = true end
  out.called_studio_only = called.CreateSubtitlesFromAudio or false
  return out
end

function Fake.recording_ui()
  local ui = { messages = {}, progress_calls = 0 }
  function ui:ask_options(defaults) return defaults end
  function ui:progress() self.progress_calls = self.progress_calls + 1 end
  function ui:cancelled() return false end
  function ui:message(title, text, is_error) self.messages[#self.messages + 1] = { title, text, is_error or false } end
  function ui:offer(title, text, action)  -- the dialog's next-step button: taken when accept_offer is set
    self:message(title, text)
    self.offered = action
    return self.accept_offer or false
  end
  function ui:close() end
  return ui
end

return Fake
