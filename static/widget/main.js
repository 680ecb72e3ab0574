/* presence widget: live "N people viewing" badges and a small JS API.
 * <script src="https://presence.example.com/widget.js" data-room="docs-intro" async></script>
 * <span data-presence-watch="product-42"></span>: a badge of another room, which only watches.
 * Attributes of the tag: data-room, data-label, data-label-one, data-theme (light|dark),
 * data-color, data-position (inline|bottom-right|bottom-left), data-target,
 * data-badge="false" (API only), data-share="false" (one stream per tab).
 * API: presence.on/off(event, fn) for the tag's room; presence.room(name[, {token: fn}])
 * -> {name, count, presence, state, leader, on, off, setToken, close}. Events: 'count',
 * 'presence', 'state' ('connecting'|'live'|'reconnecting'|'error').
 * presence.watch(['a', 'b']) -> {rooms, room(name), on(event, fn(value, room)), off, close}:
 * follows rooms without being counted in them, over the page's one stream.
 * Token functions (presence.setToken(fn), room.setToken(fn), {token: fn}) return a fresh
 * token, a string or a Promise of one, before each new stream. See docs/widget.md.
 * Served as one file: the parts in static/widget/ share this function's scope; they
 * declare functions only, and main() below starts the widget. */
var script, base, data, sharing, visitor, rooms, watching, mine;
var ROOM = /^[A-Za-z0-9._-]{1,64}$/;
var EVENTS = ['count', 'presence', 'state'];
var RENEW_MS = 3000; // at most one switch to a fresh token's stream per 3 s
var WATCH_MS = 1000; // at most one switch to a stream with a new set of watched rooms per second
var MAX_WATCH = 100; // the server's default --max-watch
var sheets = {}; // theme -> the badges' shared style sheet
main();

function main() {
  script = document.currentScript ||
    [].slice.call(document.querySelectorAll('script[src*="widget.js"]')).pop();
  if (!script) return;
  var src = new URL(script.src, location.href);
  base = src.origin + src.pathname.replace(/\/[^/]*$/, '');
  data = script.dataset;
  if (window.presence && window.presence._tag) { window.presence._tag(script, base); return; }

  sharing = !!(navigator.locks && window.BroadcastChannel) && data.share !== 'false' &&
    new URLSearchParams(location.search).get('presence-share') !== '0';
  visitor = visitorId();
  rooms = {}; // base + ' ' + name -> room
  watching = null; // the page's watched rooms (watch.js), from the first watch on
  mine = tag(script, base);
  window.presence = {
    sharing: sharing,
    base: base,
    visitor: visitor,
    room: function (name, opts) {
      if (name != null) return join(base, name, opts);
      var r = mine();
      return opts && opts.token !== undefined ? r.setToken(opts.token) : r;
    },
    watch: function (names) { return watchHandle(names); },
    setToken: function (fn) { return mine().setToken(fn); },
    on: function (ev, fn) { return mine().on(ev, fn); },
    off: function (ev, fn) { return mine().off(ev, fn); },
    _tag: tag
  };
  watchBadges();
}

function listeners() { var m = {}; EVENTS.forEach(function (e) { m[e] = []; }); return m; }

function visitorId() {
  var id = '', b = new Uint8Array(16), key = 'presence:visitor';
  crypto.getRandomValues(b);
  var fresh = [].map.call(b, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
  try {
    id = localStorage.getItem(key) || '';
    if (!/^[0-9a-f]{32}$/.test(id)) { localStorage.setItem(key, fresh); id = localStorage.getItem(key); }
  } catch (e) { /* storage blocked: a per-page id */ }
  return /^[0-9a-f]{32}$/.test(id || '') ? id : fresh;
}

function call(fn, v, w) {
  try { fn(v, w); } catch (e) { setTimeout(function () { throw e; }); }
}

// tokenFn checks a token function given to the API: a function, or null for none.
function tokenFn(fn) {
  if (fn == null) return null;
  if (typeof fn !== 'function') throw new TypeError('presence: token must be a function that returns a token (or a Promise of one)');
  return fn;
}

// tag handles one <script> tag: a badge tag joins its room now; an API-only tag on first use.
// It returns the getter of that room, which joins it on first use (or
// with peek only says whether it is joined).
function tag(el, b) {
  var r = null, room = el.dataset.room || 'lobby';
  if (el.dataset.badge !== 'false') badge(el, r = join(b, room));
  return function (peek) { return r && !r.closed ? r : peek ? null : (r = join(b, room)); };
}
