"use strict";
// Shows a call script from the server's rendered tree (docs/api.md, "Call
// scripts") as DOM nodes whose text is set with textContent: no HTML is ever
// parsed here, so whatever a contact's fields hold stays text. Used by the
// agent's page beside the card and by the supervisor's preview.

const dialcrmScript = (() => {
  function spans(line) {
    return (line || []).map((span) => {
      let node = document.createElement("span");
      if (span.field) {
        node.className = span.missing ? "merge missing" : "merge";
        node.dataset.field = span.field;
        node.textContent = span.missing ? `{${span.field}}` : span.text;
        if (span.missing) node.title = "No value for this contact";
      } else {
        node.textContent = span.text;
      }
      if (span.italic) {
        const em = document.createElement("em");
        em.append(node);
        node = em;
      }
      if (span.bold) {
        const strong = document.createElement("strong");
        strong.append(node);
        node = strong;
      }
      return node;
    });
  }

  // Replaces the container's content with the script; returns whether
  // there was anything to show.
  function render(container, script) {
    container.replaceChildren();
    const sections = (script && script.sections) || [];
    for (const section of sections) {
      const el = document.createElement("section");
      el.className = "script-section";
      const title = document.createElement("h3");
      title.textContent = section.title;
      el.append(title);
      for (const block of section.blocks || []) {
        if (block.kind === "list") {
          const ul = document.createElement("ul");
          for (const item of block.items || []) {
            const li = document.createElement("li");
            li.append(...spans(item));
            ul.append(li);
          }
          el.append(ul);
        } else {
          const p = document.createElement("p");
          (block.lines || []).forEach((line, i) => {
            if (i > 0) p.append(document.createElement("br"));
            p.append(...spans(line));
          });
          el.append(p);
        }
      }
      container.append(el);
    }
    return sections.length > 0;
  }

  return { render };
})();
