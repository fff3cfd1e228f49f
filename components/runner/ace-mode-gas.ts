/**
 * An ACE mode for GNU as (AT&T syntax, `.s`/`.S` files): ACE ships NASM/Intel syntax only
 * (assembly_x86). Written by hand because no package provides one; it only highlights:
 * comments (`#`, `/* … *\/`, and C preprocessor lines in .S), directives, labels, %registers,
 * $immediates, strings and numbers, and the mnemonic at the start of a statement.
 */
// biome-ignore lint/suspicious/noExplicitAny: ACE's module loader has no TypeScript types
type AceLoader = any;

export const GAS_MODE = "ace/mode/gas";

let defined = false;

export function defineGasMode(ace: AceLoader): void {
  if (defined) return;
  defined = true;
  ace.define(
    "ace/mode/gas_highlight_rules",
    ["require", "exports", "module", "ace/lib/oop", "ace/mode/text_highlight_rules"],
    (require: AceLoader, exports: AceLoader) => {
      const oop = require("../lib/oop");
      const { TextHighlightRules } = require("./text_highlight_rules");
      function gasHighlightRules(this: AceLoader) {
        this.$rules = {
          start: [
            { token: "comment", regex: "#\\s*(?:include|define|undef|if|ifdef|ifndef|else|elif|endif)\\b.*$" },
            { token: "comment", regex: "(?:#|//).*$" },
            { token: "comment", regex: "/\\*", next: "comment" },
            { token: "string", regex: '"(?:[^"\\\\]|\\\\.)*"' },
            { token: "entity.name.function", regex: "^\\s*[A-Za-z_.$][\\w.$]*:" },
            { token: "support.function.directive", regex: "\\.[A-Za-z_][\\w]*\\b" },
            { token: "variable.parameter.register", regex: "%[A-Za-z][\\w]*" },
            { token: "constant.numeric", regex: "\\$-?(?:0[xX][0-9a-fA-F]+|\\d+)\\b" },
            { token: "constant.character", regex: "\\$[A-Za-z_.][\\w.]*" },
            { token: "constant.numeric", regex: "-?\\b(?:0[xX][0-9a-fA-F]+|0[bB][01]+|\\d+)\\b" },
            { token: "keyword.control", regex: "^\\s*[a-z][a-z0-9]*\\b" },
          ],
          comment: [
            { token: "comment", regex: "\\*/", next: "start" },
            { defaultToken: "comment" },
          ],
        };
      }
      oop.inherits(gasHighlightRules, TextHighlightRules);
      exports.GasHighlightRules = gasHighlightRules;
    },
  );
  ace.define(GAS_MODE, ["require", "exports", "module", "ace/lib/oop", "ace/mode/text", "ace/mode/gas_highlight_rules"], (require: AceLoader, exports: AceLoader) => {
    const oop = require("../lib/oop");
    const TextMode = require("./text").Mode;
    const { GasHighlightRules } = require("./gas_highlight_rules");
    function gasMode(this: AceLoader) {
      this.HighlightRules = GasHighlightRules;
      this.$behaviour = this.$defaultBehaviour;
    }
    oop.inherits(gasMode, TextMode);
    gasMode.prototype.lineCommentStart = "#";
    gasMode.prototype.blockComment = { start: "/*", end: "*/" };
    gasMode.prototype.$id = GAS_MODE;
    exports.Mode = gasMode;
  });
}
