export default function Home() {
  return <main><h1>OSByExample</h1></main>;
}
