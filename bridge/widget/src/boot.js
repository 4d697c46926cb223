/*!
 * Bürgerchat citizen widget (v0). Plain JavaScript: no build step, no external
 * resources (except Jitsi's own IFrame API, loaded from the town's Jitsi only when
 * the citizen joins a video call), everything in a Shadow DOM so the town's page and
 * the widget cannot restyle each other.
 *
 * Embed with one tag (the API address is taken from the script's own src):
 *   <script src="https://chat.musterstadt.example/widget/widget.js" async></script>
 * Optional attributes on that tag:
 *   data-api="https://…"   the bridge's public URL, if it is not where widget.js is served
 *   data-lang="en"         the page's language (de en tr ar uk ru), used when the citizen
 *                          has not chosen one; without it the browser's languages decide
 *                          (citizens can switch in the panel)
 *
 * A personal link from an "Sie haben eine Antwort" e-mail ends in
 *   #bc-resume=<case_id>.<resume token>
 * and opens that conversation on the page carrying this tag.
 *
 * Theming: CSS custom properties cross the shadow boundary, so set them on the
 * widget's element (or :root) on the town's page, e.g.
 *   buergerchat-widget { --bc-accent: #005ca9; }
 *   --bc-accent        button, header, citizen's messages  (default #a84b00, orange: 5:1 on white and on the staff bubbles)
 *   --bc-accent-text   text and icons on the accent colour (#ffffff)
 *   --bc-bg            panel background                    (#ffffff)
 *   --bc-text          normal text                         (#1f2328)
 *   --bc-muted         times, system messages              (#5f6368)
 *   --bc-border        lines and input borders             (#d0d4d9)
 *   --bc-staff-bg      staff messages, privacy box         (#eef1f4)
 *   --bc-staff-text    text of staff messages              (#1f2328)
 *   --bc-live          "available now" status              (#1e7e34)
 *   --bc-offline       "not staffed" status, notices       (#8a5a00)
 *   --bc-error         errors, connection banner, badge    (#b3261e)
 *   --bc-focus         keyboard focus ring                 (#1a73e8)
 *   --bc-radius        panel corner radius                 (14px)
 *   --bc-font          font family                         (system UI font)
 *   --bc-font-size     base font size                      (15px)
 *   --bc-offset        distance of button/panel from the window's edge (20px)
 *   --bc-z             z-index of button and panel         (2147483000)
 * The defaults live in widget.css, once each.
 *
 * Source: bridge/widget/src/*.js, one concern per file. bridge/api/widget.py serves
 * them as this one widget.js, in the order of its SOURCES list and inside one
 * function (so nothing lands on the page's globals). The files share that scope
 * and call each other's functions; their top-level statements run in that order,
 * and the last file starts the widget. No modules, no build step; a new file must
 * be added to SOURCES.
 */
// The tag was included twice: keep the first (returns from the wrapping function).
if (window.BuergerChat) return;
window.BuergerChat = { version: "0" };

// --- where we come from ----------------------------------------------------
var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
var src = new URL(script.src, location.href);
var STATIC = src.href.replace(/[^/]*$/, ""); // folder of widget.js (widget.css)
var API = (script.getAttribute("data-api") || src.href.replace(/\/widget\/[^/]*$/, ""))
  .replace(/\/+$/, "").replace(/\/api\/v1$/, "") + "/api/v1";
var KEY = "buergerchat:" + API; // one stored case per bridge, not per page
var LONG_POLL = 25; // seconds; the bridge caps this at long_poll_max_seconds
var MAX_LEN = 4000; // the bridge's default citizen.max_message_length
var SMALL_SCREEN = 600; // px: below this a video call opens in its own tab
var JITSI_LOAD_MS = 20000; // Jitsi's external_api.js must load within this
