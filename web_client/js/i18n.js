// The page's words: one catalog per language (web_client/i18n/<lang>.json, flat dotted keys,
// `{name}` placeholders), English the reference. The language is the first of the browser's
// preferred languages whose catalog exists, else English; adding a language is adding its file.
//
// The catalog is loaded with a top-level await, so every module that imports this one runs after
// it is there: `t()` is synchronous everywhere. Elements in the HTML name their words with
// `data-i18n="key"` (their text) and `data-i18n-attr="attribute=key ..."` (labels, placeholders,
// titles); they are filled once, here, at load. The error pages (404, 410, 429) load only this
// module, one identical script tag, so each of them stays the same bytes for every URL.

/** The reference language, and the one used when no preferred language has a catalog. */
export const FALLBACK_LANGUAGE = "en";

/**
 * The catalogs to try, best first: each preferred language's primary subtag (`fr-CA` -> `fr`),
 * once, then English. Anything that is not a plain language subtag is skipped (it names a file).
 * @param {readonly string[]} preferred
 * @returns {string[]}
 */
export function candidateLanguages(preferred) {
  /** @type {string[]} */
  const found = [];
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split("-")[0] ?? "";
    if (/^[a-z]{2,3}$/.test(primary) && !found.includes(primary)) found.push(primary);
  }
  if (!found.includes(FALLBACK_LANGUAGE)) found.push(FALLBACK_LANGUAGE);
  return found;
}

/**
 * @param {string} language
 * @returns {Promise<Record<string, string> | null>} the catalog, or null if there is none
 */
async function fetchCatalog(language) {
  try {
    // Relative to this module, so it stays under the same release's immutable /static/<build>/.
    const response = await fetch(new URL(`../i18n/${language}.json`, import.meta.url), { credentials: "same-origin" });
    if (!response.ok) return null;
    const words = await response.json();
    return words && typeof words === "object" ? /** @type {Record<string, string>} */ (words) : null;
  } catch {
    return null; // offline, refused or not JSON: the next candidate (English last)
  }
}

/** @returns {Promise<{language: string, words: Record<string, string>}>} */
async function loadCatalog() {
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language || FALLBACK_LANGUAGE];
  for (const language of candidateLanguages(preferred)) {
    const words = await fetchCatalog(language);
    if (words) return { language, words };
  }
  // Not even English came (a broken deploy or a proxy refusing .json). The CSP forbids inline
  // words and every word lives in a catalog, so `t()` falls back to each key's own name (see
  // `keyWords`); the root says so, for whoever debugs it.
  document.documentElement.dataset.i18nMissing = "";
  return { language: FALLBACK_LANGUAGE, words: {} };
}

/**
 * The last resort when no catalog loaded: a key's last segment made readable
 * (`page.prejoin.join` -> "Join", `page.call.leave_label` -> "Leave label"). The keys are named
 * for what they say, so the page stays usable (buttons and fields named in plain English), which
 * the raw dotted key would not be. Placeholders are lost, and the words may be clumsy; it only
 * shows while the server cannot serve its own static files.
 * @param {string} key
 */
export function keyWords(key) {
  const last = (key.split(".").pop() ?? key).replace(/_/g, " ");
  return last.charAt(0).toUpperCase() + last.slice(1);
}

const loaded = await loadCatalog();

/** The page's language (a catalog's name, e.g. "en" or "fr"). */
export const language = loaded.language;

/**
 * The words for a key, with `{name}` placeholders filled in. A key missing from the loaded
 * catalog (the catalog test keeps every language complete) shows as its readable last segment.
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  const text = loaded.words[key] ?? keyWords(key);
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * A number written the page's way (1,000 in English, 1 000 in French).
 * @param {number} value
 */
export function formatNumber(value) {
  return value.toLocaleString(language);
}

/**
 * An ordinal ("1st", "1re"): the catalog has one form per plural category of the language.
 * @param {number} value
 */
export function ordinal(value) {
  const category = new Intl.PluralRules(language, { type: "ordinal" }).select(value);
  const key = `page.ordinal.${category}`;
  return t(key in loaded.words ? key : "page.ordinal.other", { n: value });
}

/**
 * Fill in every element under `root` that names its words.
 * @param {ParentNode} root
 */
export function translateTree(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const key = element.getAttribute("data-i18n");
    if (key) element.textContent = t(key);
  }
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of (element.getAttribute("data-i18n-attr") ?? "").split(/\s+/)) {
      const [attribute, key] = pair.split("=");
      if (attribute && key) element.setAttribute(attribute, t(key));
    }
  }
}

document.documentElement.lang = language;
translateTree(document);
