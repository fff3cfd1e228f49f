"use client";
/** The join link as a QR code, drawn here in the browser (npm `qrcode`): no third-party service sees it. */
import QRCode from "qrcode";
import { useEffect, useState } from "react";

export function joinUrl(deck: string): string {
  return `${window.location.origin}/decks/${encodeURIComponent(deck)}`;
}

export function JoinCode({ url, size = 220 }: { url: string; size?: number }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    QRCode.toString(url, { type: "svg", margin: 1, errorCorrectionLevel: "M" })
      .then((svg) => {
        if (!cancelled) setSrc(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
      })
      .catch((err) => console.error("QR code could not be drawn", err));
    return () => {
      cancelled = true;
    };
  }, [url]);
  return (
    <figure className="live-join-code">
      {/* biome-ignore lint/performance/noImgElement: a data: URL drawn here; next/image has nothing to optimise */}
      {src ? <img src={src} width={size} height={size} alt={`QR code for ${url}`} data-join-qr /> : <div style={{ width: size, height: size }} />}
      <figcaption>
        <a href={url}>{url}</a>
      </figcaption>
    </figure>
  );
}
