// badge renders a room's count in a shadow root placed after the tag (or in data-target).
function badge(tag, r) {
  var d = tag.dataset, pos = d.position || 'inline';
  var host = badgeHost(d, d, r, '{n} people viewing', '{n} person viewing');
  if (pos === 'bottom-right' || pos === 'bottom-left') host.setAttribute('data-position', pos);
  function mount() {
    var target = d.target && document.querySelector(d.target);
    if (d.target && !target) console.warn('presence: data-target "' + d.target + '" matches nothing; the badge goes after the script tag');
    if (target) target.appendChild(host);
    else if (pos !== 'inline' || !tag.parentNode || tag.closest('head')) document.body.appendChild(host);
    else tag.parentNode.insertBefore(host, tag.nextSibling);
  }
  if (document.readyState === 'loading' && (d.target || !document.body || tag.closest('head'))) {
    document.addEventListener('DOMContentLoaded', mount);
  } else mount();
}

// badgeCSS is the badges' style, light or dark.
function badgeCSS(dark) {
  return '' +
    ':host{all:initial;display:inline-block;vertical-align:middle;max-width:100%}' +
    ':host([hidden]){display:none}' +
    ':host([data-position=bottom-right]),:host([data-position=bottom-left]){position:fixed;bottom:16px;z-index:2147483000}' +
    ':host([data-position=bottom-right]){right:16px}:host([data-position=bottom-left]){left:16px}' +
    '.b{display:inline-flex;align-items:center;gap:.5em;box-sizing:border-box;max-width:100%;padding:.3em .8em;' +
    'border:1px solid var(--a,' + (dark ? '#57606a' : '#d0d7de') + ');border-radius:999px;' +
    'background:' + (dark ? '#1f2328;color:#f0f3f6' : '#fff;color:#1f2328') + ';' +
    'font:500 13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;' +
    'font-variant-numeric:tabular-nums;white-space:nowrap;' +
    'box-shadow:0 1px 2px rgba(0,0,0,.12)}' +
    '.t{min-width:0;overflow:hidden;text-overflow:ellipsis}' +
    '.d{flex:none;width:.6em;height:.6em;border-radius:50%;background:' + (dark ? '#8c959f' : '#6e7781') + '}' +
    '.live .d{position:relative;background:var(--a,#1a7f37)}' +
    '.live .d::after{content:"";position:absolute;inset:0;border-radius:50%;background:inherit;animation:p 2s ease-out infinite}' +
    '.error{opacity:.75}' +
    '@keyframes p{from{transform:scale(1);opacity:.6}to{transform:scale(2.6);opacity:0}}' +
    '@media (prefers-reduced-motion:reduce){.live .d::after{animation:none;opacity:0}}';
}

// badgeHost makes a badge element that shows r's count: d holds its own
// data- attributes, def the defaults (the tag's), plural and one the labels
// when neither sets them. Badges of one theme share one style sheet.
function badgeHost(d, def, r, plural, one) {
  plural = d.label || def.label || plural;
  one = d.labelOne || (d !== def && d.label) || def.labelOne || one;
  var theme = (d.theme || def.theme) === 'dark' ? 'dark' : 'light', color = d.color || def.color;
  var host = document.createElement('presence-badge');
  var root = host.attachShadow({ mode: 'open' });
  root.innerHTML = '<span class="b" role="status"><span class="d" aria-hidden="true"></span><span class="t" aria-live="polite"></span></span>';
  try { // a constructed sheet keeps the root's textContent to the badge's words
    if (!sheets[theme]) { sheets[theme] = new CSSStyleSheet(); sheets[theme].replaceSync(badgeCSS(theme === 'dark')); }
    root.adoptedStyleSheets = [sheets[theme]];
  } catch (e) {
    var st = document.createElement('style');
    st.textContent = badgeCSS(theme === 'dark');
    root.insertBefore(st, root.firstChild);
  }
  var b = root.querySelector('.b'), t = root.querySelector('.t');
  if (color && window.CSS && CSS.supports('color', color)) b.style.setProperty('--a', color);
  function render() {
    var n = r.count, s = r.state;
    b.className = 'b ' + s;
    b.title = s === 'live' ? '' : 'Live count: ' + s + (r.error ? ' (' + r.error + ')' : '');
    t.textContent = s === 'error' ? '–' : n === null ? plural.replace(/\{n\}/g, '…') :
      (n === 1 ? one : plural).replace(/\{n\}/g, n.toLocaleString());
  }
  r.on('state', render).on('count', render);
  render();
  host._presenceRender = render; // for a watched room's view to drop it
  return host;
}
